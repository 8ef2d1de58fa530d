/**
 * The upkeep every store of minute rows shares (request metrics, node minutes): its schema,
 * created once the container store has told which storage kind the database offers (TimescaleDB
 * compression outside the Apache build); on plain PostgreSQL its daily partitions, created ahead
 * and dropped past retention, and its hourly rollups recomputed from the earliest hour written
 * since the last run; on TimescaleDB a refresh of the continuous aggregates over hours written
 * late (after an outage, from a buffer), which lie behind the refresh policy's window.
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
} from './storage-schema.js';

const HOUR = 3_600_000;
const DAY = 86_400_000;

export interface MinuteTablesSpec {
  /** For logs: "request metrics", "node metrics". */
  readonly what: string;
  /** The advisory lock the schema is created under. */
  readonly lockName: string;
  /** The minute tables, partitioned by day on plain PostgreSQL. */
  readonly tables: readonly string[];
  readonly schema: (kind: StorageKind, options: { compression: boolean }) => string[];
  /** TimescaleDB: refreshes of the continuous aggregates over [$1, $2). */
  readonly refresh: readonly string[];
  /** Plain PostgreSQL: recomputations of the rollups over [$1, $2). */
  readonly rollups: readonly string[];
  /** Plain PostgreSQL: deletions of rollup rows before $1. */
  readonly deleteOldRollups: readonly string[];
  readonly retentionDays: number;
  readonly rollupRetentionDays: number;
}

export class MinuteTables {
  private ready = false;
  private readonly partitions = new Set<string>();
  /** Earliest hour whose rollup must be recomputed. */
  private rollupFrom: number | undefined;

  constructor(
    private readonly spec: MinuteTablesSpec,
    private readonly deps: {
      pool: Pick<pg.Pool, 'query' | 'connect'>;
      /** The storage kind the container store detected; undefined until it has. */
      kind: () => StorageKind | undefined;
      log: Logger;
    },
  ) {}

  get schemaReady(): boolean {
    return this.ready;
  }

  /** Creates the schema once the storage kind is known; false until then. */
  async ensureSchema(): Promise<boolean> {
    if (this.ready) return true;
    const kind = this.deps.kind();
    if (kind === undefined) return false;
    let compression = false;
    if (kind === 'timescaledb') {
      const license = await this.deps.pool.query<{ license: string | null }>(TIMESCALEDB_LICENSE);
      compression = license.rows[0]?.license !== 'apache';
    }
    await runSchemaStatements(this.deps.pool, this.spec.lockName, this.spec.schema(kind, { compression }));
    this.ready = true;
    this.deps.log.info({ storage: kind }, `${this.spec.what} storage ready`);
    return true;
  }

  /** Before rows of these minutes are written: their days' partitions, on plain PostgreSQL. */
  async prepare(buckets: readonly number[]): Promise<void> {
    if (this.deps.kind() !== 'postgres') return;
    for (const day of new Set(buckets.map((b) => startOfDay(new Date(b)).getTime())))
      await this.ensurePartitions(new Date(day));
  }

  /** After rows were written: their hours' rollups are due. */
  written(earliestBucket: number): void {
    const hour = Math.floor(earliestBucket / HOUR) * HOUR;
    this.rollupFrom = Math.min(this.rollupFrom ?? hour, hour);
  }

  /** Partitions ahead, rollups, retention (plain PostgreSQL); late hours refreshed (TimescaleDB). */
  async maintain(now = new Date()): Promise<void> {
    if (!(await this.ensureSchema())) return;
    const { pool, log } = this.deps;
    const currentHour = Math.floor(now.getTime() / HOUR) * HOUR;
    if (this.deps.kind() === 'timescaledb') {
      const from = this.rollupFrom;
      if (from === undefined || from >= currentHour) return;
      this.rollupFrom = undefined;
      try {
        for (const statement of this.spec.refresh)
          await pool.query(longQuery(statement, [new Date(from), new Date(currentHour)]));
      } catch (error) {
        // Rows written during the refresh may have moved it earlier meanwhile.
        this.rollupFrom = Math.min(this.rollupFrom ?? from, from);
        throw error;
      }
      return;
    }
    for (let d = -1; d <= 2; d++) await this.ensurePartitions(new Date(now.getTime() + d * DAY));
    const from = Math.min(this.rollupFrom ?? currentHour - HOUR, currentHour - HOUR);
    this.rollupFrom = undefined;
    for (const statement of this.spec.rollups)
      await pool.query(statement, [new Date(from), new Date(currentHour + HOUR)]);
    for (const table of this.spec.tables) {
      const { rows } = await pool.query<{ name: string }>(LIST_PARTITIONS, [table]);
      for (const name of expiredPartitions(
        rows.map((r) => r.name),
        now,
        this.spec.retentionDays,
        table,
      )) {
        await pool.query(`DROP TABLE IF EXISTS ${name}`);
        this.partitions.delete(name);
        log.info({ partition: name }, `dropped ${this.spec.what} partition past retention`);
      }
    }
    const cutoff = new Date(now.getTime() - this.spec.rollupRetentionDays * DAY);
    for (const statement of this.spec.deleteOldRollups) await pool.query(statement, [cutoff]);
  }

  private async ensurePartitions(day: Date): Promise<void> {
    for (const table of this.spec.tables) {
      const name = partitionName(startOfDay(day), table);
      if (this.partitions.has(name)) continue;
      await this.deps.pool.query(createPartitionStatement(day, table));
      this.partitions.add(name);
    }
  }
}
