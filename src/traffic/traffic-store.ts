/**
 * Request metrics in PostgreSQL (TimescaleDB when the container store found it): the schema, the
 * scraper lease, the per-target checkpoints and the minute rows, written in one transaction per
 * target so that minutes and checkpoint move together (target-ledger.ts says why).
 */
import type pg from 'pg';
import type { Logger } from '../lib/logger.js';
import { longQuery, runSchemaStatements } from '../db/schema-statements.js';
import {
  createPartitionStatement,
  expiredPartitions,
  LIST_PARTITIONS,
  partitionName,
  startOfDay,
  TIMESCALEDB_LICENSE,
  type StorageKind,
} from '../metrics/storage-schema.js';
import { CheckpointError, decodeSnapshot, encodeSnapshot } from './checkpoint-codec.js';
import { SLOT, STATUS_CLASSES } from './figures.js';
import type { Checkpoint, LedgerWork } from './target-ledger.js';
import {
  CLAIM_LEASE,
  DELETE_OLD_TRAFFIC_ROLLUPS,
  INSERT_CHECKPOINT,
  INSERT_REQUEST_LATENCY,
  INSERT_REQUEST_METRICS,
  READ_CHECKPOINT,
  REFRESH_TRAFFIC_HOURLY,
  RELEASE_LEASE,
  ROLLUP_LATENCY,
  ROLLUP_REQUESTS,
  SELECT_CHECKPOINT,
  TRAFFIC_TABLES,
  trafficSchemaStatements,
  UPDATE_CHECKPOINT,
  type TrafficRetention,
} from './traffic-schema.js';

const HOUR = 3_600_000;
const LEASE_NAME = 'traefik-scraper';

type StoredCheckpoint = Checkpoint;

export type WriteResult =
  | { readonly ok: true; readonly seq: number; readonly rows: number }
  | { readonly ok: false; readonly checkpoint: StoredCheckpoint | undefined };

export class TrafficStore {
  private ready = false;
  private readonly partitions = new Set<string>();
  /** Earliest hour whose rollup must be recomputed. */
  private rollupFrom: number | undefined;

  constructor(
    private readonly options: TrafficRetention & { readonly statementTimeoutMs: number },
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
    await runSchemaStatements(
      this.deps.pool,
      'swarm-edge-traffic-schema',
      trafficSchemaStatements(kind, this.options, { compression }),
    );
    this.ready = true;
    this.deps.log.info({ storage: kind }, 'request metrics storage ready');
    return true;
  }

  /** Takes or renews the scraper lease for `holder`; whether it holds it now. */
  async claimLease(holder: string, ttlMs: number): Promise<boolean> {
    if (!(await this.ensureSchema())) return false;
    const { rows } = await this.deps.pool.query<{ holder: string }>(CLAIM_LEASE, [LEASE_NAME, holder, ttlMs]);
    return rows[0]?.holder === holder;
  }

  async releaseLease(holder: string): Promise<void> {
    if (!this.ready) return;
    await this.deps.pool.query(RELEASE_LEASE, [LEASE_NAME, holder]);
  }

  async readCheckpoint(target: string): Promise<StoredCheckpoint | undefined> {
    const { rows } = await this.deps.pool.query<CheckpointRow>(READ_CHECKPOINT, [target]);
    return rows[0] ? this.decode(target, rows[0]) : undefined;
  }

  /** Writes `work`'s minutes and moves the checkpoint, if it is still `work.baseSeq`. */
  async write(work: LedgerWork, holder: string): Promise<WriteResult> {
    if (!(await this.ensureSchema())) throw new Error('request metrics schema not ready');
    const kind = this.deps.kind();
    if (kind === 'postgres')
      for (const day of new Set(work.minutes.map((m) => startOfDay(new Date(m.minute)).getTime())))
        await this.ensurePartitions(new Date(day));
    const { metrics, latency } = toColumns(work);
    const last = work.minutes[work.minutes.length - 1]!.minute;
    const client = await this.deps.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SET LOCAL statement_timeout = ${Math.max(1, Math.floor(this.options.statementTimeoutMs))}`);
      const { rows } = await client.query<CheckpointRow>(SELECT_CHECKPOINT, [work.target]);
      const row = rows[0];
      if (row && Number(row.seq) !== work.baseSeq) {
        await client.query('ROLLBACK');
        return { ok: false, checkpoint: this.decode(work.target, row) };
      }
      const seq = (row ? Number(row.seq) : work.baseSeq) + 1;
      const written = metrics[0]!.length;
      if (written > 0) {
        await client.query(INSERT_REQUEST_METRICS, metrics);
        await client.query(INSERT_REQUEST_LATENCY, latency);
      }
      const snapshot = encodeSnapshot(work.snapshot);
      const moved = row
        ? await client.query(UPDATE_CHECKPOINT, [work.target, seq, new Date(last), holder, snapshot, work.baseSeq])
        : await client.query(INSERT_CHECKPOINT, [work.target, seq, new Date(last), holder, snapshot]);
      if (moved.rowCount !== 1) {
        // Another instance created the checkpoint meanwhile.
        await client.query('ROLLBACK');
        return { ok: false, checkpoint: await this.readCheckpoint(work.target) };
      }
      await client.query('COMMIT');
      const earliest = Math.floor(work.minutes[0]!.minute / HOUR) * HOUR;
      this.rollupFrom = Math.min(this.rollupFrom ?? earliest, earliest);
      return { ok: true, seq, rows: written };
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  /** Partitions ahead, rollups, retention (plain PostgreSQL); late hours refreshed (TimescaleDB). */
  async maintain(now = new Date()): Promise<void> {
    if (!(await this.ensureSchema())) return;
    const { pool, log } = this.deps;
    const currentHour = Math.floor(now.getTime() / HOUR) * HOUR;
    if (this.deps.kind() === 'timescaledb') {
      const from = this.rollupFrom;
      if (from !== undefined && from < currentHour) {
        this.rollupFrom = undefined;
        try {
          for (const statement of REFRESH_TRAFFIC_HOURLY)
            await pool.query(longQuery(statement, [new Date(from), new Date(currentHour)]));
        } catch (error) {
          this.rollupFrom = Math.min(this.rollupFrom ?? from, from);
          throw error;
        }
      }
      return;
    }
    for (let d = -1; d <= 2; d++) await this.ensurePartitions(new Date(now.getTime() + d * 86_400_000));
    const from = Math.min(this.rollupFrom ?? currentHour - HOUR, currentHour - HOUR);
    this.rollupFrom = undefined;
    await pool.query(ROLLUP_REQUESTS, [new Date(from), new Date(currentHour + HOUR)]);
    await pool.query(ROLLUP_LATENCY, [new Date(from), new Date(currentHour + HOUR)]);
    for (const table of TRAFFIC_TABLES) {
      const { rows } = await pool.query<{ name: string }>(LIST_PARTITIONS, [table]);
      for (const name of expiredPartitions(
        rows.map((r) => r.name),
        now,
        this.options.retentionDays,
        table,
      )) {
        await pool.query(`DROP TABLE IF EXISTS ${name}`);
        this.partitions.delete(name);
        log.info({ partition: name }, 'dropped request metrics partition past retention');
      }
    }
    const cutoff = new Date(now.getTime() - this.options.rollupRetentionDays * 86_400_000);
    for (const statement of DELETE_OLD_TRAFFIC_ROLLUPS) await pool.query(statement, [cutoff]);
  }

  private async ensurePartitions(day: Date): Promise<void> {
    for (const table of TRAFFIC_TABLES) {
      const name = partitionName(startOfDay(day), table);
      if (this.partitions.has(name)) continue;
      await this.deps.pool.query(createPartitionStatement(day, table));
      this.partitions.add(name);
    }
  }

  private decode(target: string, row: CheckpointRow): StoredCheckpoint {
    let snapshot: StoredCheckpoint['snapshot'];
    try {
      snapshot = decodeSnapshot(row.snapshot);
    } catch (error) {
      if (!(error instanceof CheckpointError)) throw error;
      this.deps.log.warn(
        { target, err: error },
        'request metrics checkpoint unreadable: the target starts again from a baseline',
      );
    }
    return { seq: Number(row.seq), minute: row.minute.getTime(), holder: row.holder, snapshot };
  }
}

interface CheckpointRow {
  readonly seq: string;
  readonly minute: Date;
  readonly holder: string;
  readonly snapshot: Buffer;
}

/**
 * The unnest columns of INSERT_REQUEST_METRICS and INSERT_REQUEST_LATENCY. A deployment's idle
 * minute (no request, no open connection) is not stored; a minute with requests stores every
 * bucket, zeros too, since the quantile of a sum needs the whole layout.
 */
function toColumns(work: LedgerWork): { metrics: unknown[][]; latency: unknown[][] } {
  const metrics = Array.from({ length: 15 }, (): unknown[] => []);
  const latency = Array.from({ length: 5 }, (): unknown[] => []);
  for (const { minute, byDeployment } of work.minutes) {
    const bucket = new Date(minute);
    for (const [deploymentId, { bounds, vector }] of byDeployment) {
      const counts = STATUS_CLASSES.map((_, i) => Math.round(vector[SLOT.status + i]!));
      const requests = counts.reduce((a, b) => a + b, 0);
      const durationCount = Math.round(vector[SLOT.durationCount]!);
      const open = vector[SLOT.openConnections]!;
      if (requests === 0 && durationCount === 0 && open === 0) continue;
      const values = [
        bucket,
        deploymentId,
        work.target,
        requests,
        ...counts,
        Math.round(vector[SLOT.requestBytes]!),
        Math.round(vector[SLOT.responseBytes]!),
        vector[SLOT.durationSum]!,
        durationCount,
        open,
      ];
      values.forEach((value, i) => metrics[i]!.push(value));
      if (durationCount === 0) continue;
      bounds.forEach((le, i) => {
        latency[0]!.push(bucket);
        latency[1]!.push(deploymentId);
        latency[2]!.push(work.target);
        latency[3]!.push(le);
        latency[4]!.push(Math.round(vector[SLOT.buckets + i]!));
      });
    }
  }
  return { metrics, latency };
}
