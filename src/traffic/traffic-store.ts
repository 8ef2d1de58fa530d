/**
 * Request metrics in PostgreSQL (TimescaleDB when the container store found it): the schema, the
 * scraper lease, the per-target checkpoints and the minute rows, written in one transaction per
 * target so that minutes and checkpoint move together (target-ledger.ts says why).
 */
import type pg from 'pg';
import type { Logger } from '../lib/logger.js';
import { MinuteTables } from '../metrics/minute-tables.js';
import type { StorageKind } from '../metrics/storage-schema.js';
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

const LEASE_NAME = 'traefik-scraper';

type StoredCheckpoint = Checkpoint;

export type WriteResult =
  | { readonly ok: true; readonly seq: number; readonly rows: number }
  | { readonly ok: false; readonly checkpoint: StoredCheckpoint | undefined };

export class TrafficStore {
  private readonly tables: MinuteTables;

  constructor(
    private readonly options: TrafficRetention & { readonly statementTimeoutMs: number },
    private readonly deps: {
      pool: Pick<pg.Pool, 'query' | 'connect'>;
      /** The storage kind the container store detected; undefined until it has. */
      kind: () => StorageKind | undefined;
      log: Logger;
    },
  ) {
    this.tables = new MinuteTables(
      {
        what: 'request metrics',
        lockName: 'swarm-edge-traffic-schema',
        tables: TRAFFIC_TABLES,
        schema: (kind, schemaOptions) => trafficSchemaStatements(kind, options, schemaOptions),
        refresh: REFRESH_TRAFFIC_HOURLY,
        rollups: [ROLLUP_REQUESTS, ROLLUP_LATENCY],
        deleteOldRollups: DELETE_OLD_TRAFFIC_ROLLUPS,
        retentionDays: options.retentionDays,
        rollupRetentionDays: options.rollupRetentionDays,
      },
      deps,
    );
  }

  get schemaReady(): boolean {
    return this.tables.schemaReady;
  }

  /** Creates the schema once the storage kind is known; false until then. */
  ensureSchema(): Promise<boolean> {
    return this.tables.ensureSchema();
  }

  /** Takes or renews the scraper lease for `holder`; whether it holds it now. */
  async claimLease(holder: string, ttlMs: number): Promise<boolean> {
    if (!(await this.ensureSchema())) return false;
    const { rows } = await this.deps.pool.query<{ holder: string }>(CLAIM_LEASE, [LEASE_NAME, holder, ttlMs]);
    return rows[0]?.holder === holder;
  }

  async releaseLease(holder: string): Promise<void> {
    if (!this.tables.schemaReady) return;
    await this.deps.pool.query(RELEASE_LEASE, [LEASE_NAME, holder]);
  }

  async readCheckpoint(target: string): Promise<StoredCheckpoint | undefined> {
    const { rows } = await this.deps.pool.query<CheckpointRow>(READ_CHECKPOINT, [target]);
    return rows[0] ? this.decode(target, rows[0]) : undefined;
  }

  /** Writes `work`'s minutes and moves the checkpoint, if it is still `work.baseSeq`. */
  async write(work: LedgerWork, holder: string): Promise<WriteResult> {
    if (!(await this.ensureSchema())) throw new Error('request metrics schema not ready');
    await this.tables.prepare(work.minutes.map((m) => m.minute));
    const { metrics, latency } = toColumns(work);
    const last = work.minutes[work.minutes.length - 1]!.minute;
    const client = await this.deps.pool.connect();
    let failure: Error | undefined;
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
      this.tables.written(work.minutes[0]!.minute);
      return { ok: true, seq, rows: written };
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      failure = error as Error;
      throw error;
    } finally {
      // After a failure, out of the pool: the connection may be broken, or on a demoted primary.
      client.release(failure);
    }
  }

  /** Partitions ahead, rollups, retention (plain PostgreSQL); late hours refreshed (TimescaleDB). */
  maintain(now = new Date()): Promise<void> {
    return this.tables.maintain(now);
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
