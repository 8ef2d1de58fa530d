/**
 * This node's minutes in the metrics database (TimescaleDB when the container store found it):
 * a bounded buffer, oldest first, written in one batched INSERT per flush (ON CONFLICT DO
 * NOTHING, so a retry after an unknown outcome is harmless). While the database is away the
 * minutes wait; past the bound (a week of one node by default) the oldest go, counted. Nothing
 * else is dropped.
 */
import type pg from 'pg';
import { longQuery, runSchemaStatements } from '../db/schema-statements.js';
import type { Logger } from '../lib/logger.js';
import {
  createPartitionStatement,
  expiredPartitions,
  LIST_PARTITIONS,
  partitionName,
  startOfDay,
  TIMESCALEDB_LICENSE,
  type StorageKind,
} from '../metrics/storage-schema.js';
import type { NodeMinuteRow } from './node-minutes.js';
import {
  DELETE_OLD_NODE_ROLLUPS,
  INSERT_NODE_MINUTES,
  NODE_INSERT_COLUMNS,
  NODE_TABLE,
  nodeSchemaStatements,
  REFRESH_NODE_HOURLY,
  ROLLUP_NODE_HOURS,
  type NodeRetention,
} from './node-schema.js';

const HOUR = 3_600_000;
const DAY = 86_400_000;
const BATCH_ROWS = 1_000;

export interface NodeStoreStats {
  readonly schemaReady: boolean;
  readonly bufferedMinutes: number;
  readonly droppedMinutes: number;
  readonly minutesWritten: number;
  readonly minutesDuplicate: number;
  readonly writeFailures: number;
  readonly lastWriteAt: number | null;
}

export class NodeStore {
  private buffer: NodeMinuteRow[] = [];
  private ready = false;
  private readonly partitions = new Set<string>();
  private rollupFrom: number | undefined;
  private readonly s = {
    droppedMinutes: 0,
    minutesWritten: 0,
    minutesDuplicate: 0,
    writeFailures: 0,
    lastWriteAt: null as number | null,
  };

  constructor(
    private readonly options: NodeRetention & { readonly bufferMaxMinutes: number },
    private readonly deps: {
      pool: Pick<pg.Pool, 'query' | 'connect'>;
      /** The storage kind the container store detected; undefined until it has. */
      kind: () => StorageKind | undefined;
      log: Logger;
    },
  ) {}

  stats(): NodeStoreStats {
    return { schemaReady: this.ready, bufferedMinutes: this.buffer.length, ...this.s };
  }

  enqueue(rows: readonly NodeMinuteRow[]): void {
    if (rows.length === 0) return;
    this.buffer.push(...rows);
    const excess = this.buffer.length - this.options.bufferMaxMinutes;
    if (excess > 0) {
      this.buffer.splice(0, excess);
      this.s.droppedMinutes += excess;
      this.deps.log.warn(
        { dropped: excess, droppedTotal: this.s.droppedMinutes },
        'node minutes buffer full; dropped the oldest',
      );
    }
  }

  /** Writes buffered minutes, oldest first; on failure they stay buffered and the error is thrown. */
  async flush(): Promise<void> {
    while (this.buffer.length > 0) {
      const batch = this.buffer.slice(0, BATCH_ROWS);
      try {
        if (!(await this.ensureSchema())) return;
        if (this.deps.kind() === 'postgres')
          for (const day of new Set(batch.map((r) => startOfDay(new Date(r.bucket)).getTime())))
            await this.ensurePartition(new Date(day));
        const result = await this.deps.pool.query(INSERT_NODE_MINUTES, toColumns(batch));
        const inserted = result.rowCount ?? 0;
        this.s.minutesWritten += inserted;
        this.s.minutesDuplicate += batch.length - inserted;
        this.s.lastWriteAt = Date.now();
      } catch (error) {
        this.s.writeFailures += 1;
        throw error;
      }
      // Minutes enqueued meanwhile went to the end: the batch is still the head.
      this.buffer.splice(0, batch.length);
      const earliest = Math.floor(batch[0]!.bucket / HOUR) * HOUR;
      this.rollupFrom = Math.min(this.rollupFrom ?? earliest, earliest);
    }
  }

  /** Partitions ahead, the rollup and retention (plain PostgreSQL); late hours refreshed (TimescaleDB). */
  async maintain(now = new Date()): Promise<void> {
    if (!(await this.ensureSchema())) return;
    const { pool, log } = this.deps;
    const currentHour = Math.floor(now.getTime() / HOUR) * HOUR;
    if (this.deps.kind() === 'timescaledb') {
      // Hours written late (after an outage, from the buffer) lie behind the refresh policy's window.
      const from = this.rollupFrom;
      if (from === undefined || from >= currentHour) return;
      this.rollupFrom = undefined;
      try {
        await pool.query(longQuery(REFRESH_NODE_HOURLY, [new Date(from), new Date(currentHour)]));
      } catch (error) {
        this.rollupFrom = Math.min(this.rollupFrom ?? from, from);
        throw error;
      }
      return;
    }
    for (let d = -1; d <= 2; d++) await this.ensurePartition(new Date(now.getTime() + d * DAY));
    const from = Math.min(this.rollupFrom ?? currentHour - HOUR, currentHour - HOUR);
    this.rollupFrom = undefined;
    await pool.query(ROLLUP_NODE_HOURS, [new Date(from), new Date(currentHour + HOUR)]);
    const { rows } = await pool.query<{ name: string }>(LIST_PARTITIONS, [NODE_TABLE]);
    for (const name of expiredPartitions(
      rows.map((r) => r.name),
      now,
      this.options.retentionDays,
      NODE_TABLE,
    )) {
      await pool.query(`DROP TABLE IF EXISTS ${name}`);
      this.partitions.delete(name);
      log.info({ partition: name }, 'dropped node metrics partition past retention');
    }
    await pool.query(DELETE_OLD_NODE_ROLLUPS, [new Date(now.getTime() - this.options.rollupRetentionDays * DAY)]);
  }

  private async ensureSchema(): Promise<boolean> {
    if (this.ready) return true;
    const kind = this.deps.kind();
    if (kind === undefined) return false;
    let compression = false;
    if (kind === 'timescaledb') {
      const license = await this.deps.pool.query<{ license: string | null }>(TIMESCALEDB_LICENSE);
      compression = license.rows[0]?.license !== 'apache';
    }
    await runSchemaStatements(
      this.deps.pool,
      'swarm-edge-node-schema',
      nodeSchemaStatements(kind, this.options, { compression }),
    );
    this.ready = true;
    return true;
  }

  private async ensurePartition(day: Date): Promise<void> {
    const name = partitionName(startOfDay(day), NODE_TABLE);
    if (this.partitions.has(name)) return;
    await this.deps.pool.query(createPartitionStatement(day, NODE_TABLE));
    this.partitions.add(name);
  }
}

/** Column arrays for INSERT_NODE_MINUTES, one array parameter per column. */
export function toColumns(rows: readonly NodeMinuteRow[]): unknown[][] {
  const columns = Array.from({ length: NODE_INSERT_COLUMNS }, (): unknown[] => []);
  for (const r of rows)
    [
      new Date(r.bucket),
      r.nodeId,
      r.cpuAvg,
      r.cpuMax,
      r.load1Avg,
      r.load1Max,
      r.memoryTotal,
      r.memoryUsedAvg,
      r.memoryUsedMax,
      r.swapUsedMax,
      r.diskUsed,
      r.diskTotal,
      r.diskReadBytes,
      r.diskWriteBytes,
      r.netRxBytes,
      r.netTxBytes,
      r.runningContainersMax,
      r.runningDeploymentsMax,
      r.samples,
    ].forEach((value, i) => columns[i]!.push(value));
  return columns;
}
