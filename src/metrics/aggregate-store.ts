/**
 * Writes finished 60 s windows to TimescaleDB, or plain PostgreSQL when the extension is absent.
 *
 * Rows go through a bounded in-memory buffer, oldest first, one batched unnest INSERT per flush
 * (ON CONFLICT DO NOTHING, so a retry after an unknown outcome is harmless), behind a circuit
 * breaker. While the database is away the breaker is open, nothing is attempted, and rows wait in
 * the buffer; when it is full the oldest are dropped and counted. Nothing else is ever dropped.
 */
import type { Logger } from '../lib/logger.js';
import type pg from 'pg';
import { createBreaker, type Breaker } from '../lib/breaker.js';
import { failureLogLevel } from '../lib/backoff.js';
import type { AggregateRow } from './aggregator.js';
import {
  createPartitionStatement,
  CREATE_TIMESCALEDB,
  DELETE_OLD_ROLLUPS,
  DETECT_TIMESCALEDB,
  expiredPartitions,
  INSERT_AGGREGATES,
  LIST_PARTITIONS,
  partitionName,
  REFRESH_HOURLY,
  ROLLUP_HOURS,
  schemaStatements,
  startOfDay,
  TIMESCALEDB_LICENSE,
  type StorageKind,
} from './storage-schema.js';
import { errorMessage } from '../lib/errors.js';
import { longQuery, runSchemaStatements } from '../db/schema-statements.js';
import { RecentWrites } from '../db/index.js';

export interface StoreOptions {
  readonly bufferMaxRows: number;
  readonly batchRows: number;
  readonly retentionDays: number;
  readonly rollupRetentionDays: number;
  readonly statementTimeoutMs: number;
}

export interface StoreStats {
  readonly kind: StorageKind | undefined;
  readonly schemaReady: boolean;
  readonly bufferedRows: number;
  readonly droppedRows: number;
  readonly batchesWritten: number;
  readonly rowsWritten: number;
  readonly rowsDuplicate: number;
  /** Rows written again after a PostgreSQL failover (see RecentWrites). */
  readonly rowsReplayed: number;
  readonly batchesFailed: number;
  readonly lastWriteAt: number | undefined;
  readonly lastError: string | undefined;
  readonly breaker: ReturnType<Breaker<[AggregateRow[]], number>['stats']>;
}

const HOUR = 3_600_000;

export class AggregateStore {
  private buffer: AggregateRow[] = [];
  private kind: StorageKind | undefined;
  private schemaReady = false;
  private readonly partitions = new Set<string>();
  private readonly breaker: Breaker<[AggregateRow[]], number>;
  private flushing: Promise<void> | undefined;
  /** Earliest hour whose rollup must be recomputed (plain PostgreSQL). */
  private rollupFrom: number | undefined;
  private consecutiveFailures = 0;
  private readonly recent: RecentWrites<AggregateRow>;
  private s = {
    droppedRows: 0,
    batchesWritten: 0,
    rowsWritten: 0,
    rowsDuplicate: 0,
    rowsReplayed: 0,
    batchesFailed: 0,
    lastWriteAt: undefined as number | undefined,
    lastError: undefined as string | undefined,
  };

  constructor(
    private readonly options: StoreOptions,
    private readonly deps: { pool: Pick<pg.Pool, 'query' | 'connect'>; log: Logger },
  ) {
    this.recent = new RecentWrites({ maxRows: options.bufferMaxRows });
    this.breaker = createBreaker((rows: AggregateRow[]) => this.insert(rows), {
      name: 'metrics-database',
      // The statement timeout cancels the query server-side; the breaker's own is a backstop.
      timeoutMs: options.statementTimeoutMs + 3_000,
      resetMs: 2_000,
      maxResetMs: 30_000,
      // Rows are only written when windows finish (about once a minute), so a 10 s window holds
      // one or two attempts: a failed write opens the breaker. That is cheap: the rows wait in
      // the buffer and the trial comes 2 s later, doubling while the database stays away.
      windowMs: 10_000,
      errorThresholdPercentage: 40,
      volumeThreshold: 1,
    });
  }

  onBreakerChange(listener: (state: string) => void): void {
    this.breaker.onStateChange(listener);
  }

  breakerState() {
    return this.breaker.state();
  }

  /** Which storage path the schema was created for; undefined until then. */
  storageKind(): StorageKind | undefined {
    return this.schemaReady ? this.kind : undefined;
  }

  stats(): StoreStats {
    return {
      kind: this.kind,
      schemaReady: this.schemaReady,
      bufferedRows: this.buffer.length,
      ...this.s,
      breaker: this.breaker.stats(),
    };
  }

  /** Queues finished windows (in bucket order); drops the oldest beyond the bound. */
  enqueue(rows: readonly AggregateRow[]): void {
    if (rows.length === 0) return;
    this.buffer.push(...rows);
    this.bound();
  }

  private bound(): void {
    const excess = this.buffer.length - this.options.bufferMaxRows;
    if (excess > 0) {
      this.buffer.splice(0, excess);
      this.s.droppedRows += excess;
      this.deps.log.warn(
        { dropped: excess, droppedTotal: this.s.droppedRows, bound: this.options.bufferMaxRows },
        'metrics buffer full; dropped the oldest windows',
      );
    }
  }

  /**
   * After a failover: the rows written in the last minutes go back to the head of the buffer, to
   * be written again on the new primary (ON CONFLICT keeps the ones it has). Done by the next
   * drain, before it takes a batch: a batch in flight is the buffer's head until it is written.
   */
  replayRecent(): void {
    this.recent.replayLater();
  }

  private takeReplay(): void {
    const rows = this.recent.takeReplay();
    this.s.rowsReplayed += rows.length;
    this.buffer.unshift(...rows);
    this.bound();
    this.deps.log.info({ rows: rows.length }, 'PostgreSQL primary moved; writing the recent metrics windows again');
  }

  /** Writes buffered rows, oldest first, until the buffer is empty or a write fails. */
  flush(): Promise<void> {
    this.flushing ??= this.drain().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  /** Periodic upkeep: partitions ahead, rollups, retention. Failures are logged and retried next time. */
  async maintain(now = new Date()): Promise<void> {
    if (!(await this.ensureSchema())) return;
    if (this.kind === 'timescaledb') {
      // The refresh policy covers the last 3 hours only, and real-time aggregation covers only
      // what lies past the materialised watermark: hours written late (after an outage, from a
      // buffer) would stay missing from the rollup. Refresh the hours written since last time.
      const currentHour = Math.floor(now.getTime() / HOUR) * HOUR;
      const from = this.rollupFrom;
      if (from !== undefined && from < currentHour) {
        // Batches written during the refresh set rollupFrom again for the next run.
        this.rollupFrom = undefined;
        try {
          await this.deps.pool.query(longQuery(REFRESH_HOURLY, [new Date(from), new Date(currentHour)]));
        } catch (error) {
          this.rollupFrom = Math.min(this.rollupFrom ?? from, from);
          throw error;
        }
      }
    }
    if (this.kind === 'postgres') {
      for (let d = -1; d <= 2; d++) await this.ensurePartition(new Date(now.getTime() + d * 86_400_000));
      const currentHour = Math.floor(now.getTime() / HOUR) * HOUR;
      const from = Math.min(this.rollupFrom ?? currentHour - HOUR, currentHour - HOUR);
      await this.deps.pool.query(ROLLUP_HOURS, [new Date(from), new Date(currentHour + HOUR)]);
      this.rollupFrom = undefined;
      const { rows } = await this.deps.pool.query<{ name: string }>(LIST_PARTITIONS, ['container_metrics']);
      for (const name of expiredPartitions(
        rows.map((r) => r.name),
        now,
        this.options.retentionDays,
      )) {
        await this.deps.pool.query(`DROP TABLE IF EXISTS ${name}`);
        this.partitions.delete(name);
        this.deps.log.info({ partition: name }, 'dropped metrics partition past retention');
      }
      await this.deps.pool.query(DELETE_OLD_ROLLUPS, [
        new Date(now.getTime() - this.options.rollupRetentionDays * 86_400_000),
      ]);
    }
  }

  private async drain(): Promise<void> {
    while (this.buffer.length > 0 || this.recent.replayPending) {
      if (this.breaker.state() === 'open') return;
      if (this.recent.replayPending) this.takeReplay();
      if (this.buffer.length === 0) return;
      const batch = this.buffer.slice(0, this.options.batchRows);
      try {
        const inserted = await this.breaker.fire(batch);
        // Rows enqueued meanwhile went to the end: the batch is still the head.
        this.buffer.splice(0, batch.length);
        this.recent.written(batch);
        this.s.batchesWritten += 1;
        this.s.rowsWritten += inserted;
        this.s.rowsDuplicate += batch.length - inserted;
        this.s.lastWriteAt = Date.now();
        this.s.lastError = undefined;
        this.consecutiveFailures = 0;
        const earliest = Math.floor(batch[0]!.bucket / HOUR) * HOUR;
        this.rollupFrom = Math.min(this.rollupFrom ?? earliest, earliest);
      } catch (error) {
        this.s.batchesFailed += 1;
        this.s.lastError = errorMessage(error);
        this.consecutiveFailures += 1;
        this.deps.log[failureLogLevel(this.consecutiveFailures)](
          { err: error, buffered: this.buffer.length, breaker: this.breaker.state() },
          'could not write metrics aggregates; keeping them buffered',
        );
        return;
      }
    }
  }

  private async insert(rows: AggregateRow[]): Promise<number> {
    if (!(await this.ensureSchema())) throw new Error('metrics schema not ready');
    if (this.kind === 'postgres') {
      for (const day of new Set(rows.map((r) => startOfDay(new Date(r.bucket)).getTime())))
        await this.ensurePartition(new Date(day));
    }
    const result = await this.deps.pool.query(INSERT_AGGREGATES, toColumns(rows));
    return result.rowCount ?? 0;
  }

  private async ensurePartition(day: Date): Promise<void> {
    const name = partitionName(startOfDay(day));
    if (this.partitions.has(name)) return;
    await this.deps.pool.query(createPartitionStatement(day));
    this.partitions.add(name);
  }

  /** Detects TimescaleDB and creates the schema once; false while the database is unreachable. */
  private async ensureSchema(): Promise<boolean> {
    if (this.schemaReady) return true;
    const { pool, log } = this.deps;
    const detected = await pool.query<{ installed: boolean; available: boolean }>(DETECT_TIMESCALEDB);
    let kind: StorageKind = 'postgres';
    if (detected.rows[0]?.installed) kind = 'timescaledb';
    else if (detected.rows[0]?.available) {
      try {
        await pool.query(CREATE_TIMESCALEDB);
        kind = 'timescaledb';
      } catch (error) {
        log.warn(
          { err: error },
          'timescaledb is available but could not be created (needs shared_preload_libraries and rights); using plain PostgreSQL',
        );
      }
    }
    let compression = false;
    if (kind === 'timescaledb') {
      const license = await pool.query<{ license: string | null }>(TIMESCALEDB_LICENSE);
      compression = license.rows[0]?.license !== 'apache';
    }
    await runSchemaStatements(pool, 'swarm-edge-metrics-schema', schemaStatements(kind, this.options, { compression }));
    this.kind = kind;
    this.schemaReady = true;
    log.info(
      { storage: kind, compression },
      kind === 'timescaledb'
        ? 'metrics storage: TimescaleDB hypertable'
        : 'metrics storage: plain PostgreSQL with daily partitions (timescaledb not installed)',
    );
    return true;
  }
}

/** One row's values in the column order of INSERT_AGGREGATES (and INSERT_AGGREGATE_ROW). */
export function rowValues(r: AggregateRow): unknown[] {
  return [
    new Date(r.bucket),
    r.containerId,
    r.deploymentId,
    r.nodeId,
    r.serviceId,
    r.cpuAvg,
    r.cpuMax,
    r.memoryAvg,
    r.memoryMax,
    r.netRxBytes,
    r.netTxBytes,
    r.blockReadBytes,
    r.blockWriteBytes,
    r.samples,
    r.cpuThrottledPeriods,
    r.cpuThrottledSeconds,
    r.oomKills,
    r.exits,
  ];
}

/** Column arrays for INSERT_AGGREGATES, one array parameter per column. */
export function toColumns(rows: readonly AggregateRow[]): unknown[][] {
  const columns = Array.from({ length: COLUMN_COUNT }, (): unknown[] => []);
  for (const row of rows) rowValues(row).forEach((value, i) => columns[i]!.push(value));
  return columns;
}

const COLUMN_COUNT = INSERT_AGGREGATES.match(/\$\d+/g)?.length ?? 0;
