/**
 * This node's minutes in the metrics database (TimescaleDB when the container store found it):
 * a bounded buffer, oldest first, written in one batched INSERT per flush (ON CONFLICT DO
 * NOTHING, so a retry after an unknown outcome is harmless). While the database is away the
 * minutes wait; past the bound (a week of one node by default) the oldest go, counted. Nothing
 * else is dropped.
 */
import type pg from 'pg';
import { RecentWrites } from '../db/index.js';
import type { Logger } from '../lib/logger.js';
import { MinuteTables } from '../metrics/minute-tables.js';
import type { StorageKind } from '../metrics/storage-schema.js';
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

const BATCH_ROWS = 1_000;

export interface NodeStoreStats {
  readonly schemaReady: boolean;
  readonly bufferedMinutes: number;
  readonly droppedMinutes: number;
  readonly minutesWritten: number;
  readonly minutesDuplicate: number;
  readonly minutesReplayed: number;
  readonly writeFailures: number;
  readonly lastWriteAt: number | null;
}

export class NodeStore {
  private buffer: NodeMinuteRow[] = [];
  private readonly tables: MinuteTables;
  private readonly recent: RecentWrites<NodeMinuteRow>;
  private readonly s = {
    droppedMinutes: 0,
    minutesWritten: 0,
    minutesDuplicate: 0,
    minutesReplayed: 0,
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
  ) {
    this.recent = new RecentWrites({ maxRows: options.bufferMaxMinutes });
    this.tables = new MinuteTables(
      {
        what: 'node metrics',
        lockName: 'swarm-edge-node-schema',
        tables: [NODE_TABLE],
        schema: (kind, schemaOptions) => nodeSchemaStatements(kind, options, schemaOptions),
        refresh: [REFRESH_NODE_HOURLY],
        rollups: [ROLLUP_NODE_HOURS],
        deleteOldRollups: [DELETE_OLD_NODE_ROLLUPS],
        retentionDays: options.retentionDays,
        rollupRetentionDays: options.rollupRetentionDays,
      },
      deps,
    );
  }

  stats(): NodeStoreStats {
    return { schemaReady: this.tables.schemaReady, bufferedMinutes: this.buffer.length, ...this.s };
  }

  enqueue(rows: readonly NodeMinuteRow[]): void {
    if (rows.length === 0) return;
    this.buffer.push(...rows);
    this.bound();
  }

  /** After a failover: the minutes written lately are written again on the new primary, by the next flush. */
  replayRecent(): void {
    this.recent.replayLater();
  }

  private bound(): void {
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
    if (this.recent.replayPending) {
      // Here, before a batch is taken: a batch in flight is the buffer's head until it is written.
      const rows = this.recent.takeReplay();
      this.s.minutesReplayed += rows.length;
      this.buffer.unshift(...rows);
      this.bound();
    }
    while (this.buffer.length > 0) {
      const batch = this.buffer.slice(0, BATCH_ROWS);
      try {
        if (!(await this.tables.ensureSchema())) return;
        await this.tables.prepare(batch.map((r) => r.bucket));
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
      this.recent.written(batch);
      this.tables.written(batch[0]!.bucket);
    }
  }

  /** Partitions ahead, the rollup and retention (plain PostgreSQL); late hours refreshed (TimescaleDB). */
  maintain(now = new Date()): Promise<void> {
    return this.tables.maintain(now);
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
