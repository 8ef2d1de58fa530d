/**
 * Stored request metrics for UIs: GET /api/v1/deployments/{id}/requests, planned like the
 * container history (history-params.ts: from, to, step; per is not taken). Counts are summed over
 * targets and minutes; quantiles are recomputed from the summed latency buckets with
 * histogramQuantile, so any window's p95 is exact to the buckets, not an average of averages.
 * Steps of whole hours over whole hours read the hourly rollups. Buckets are re-cut as the
 * container history does (time_bucket / date_bin from one origin).
 */
import type pg from 'pg';
import type { HistoryPlan } from '../history/history-params.js';
import type { StorageKind } from '../metrics/storage-schema.js';
import { STATUS_CLASSES, type StatusClass } from './figures.js';
import { histogramQuantile } from './histogram-quantile.js';

const ORIGIN = `TIMESTAMPTZ '2000-01-01 00:00:00+00'`;
const MAX_BOUNDS = 64;

function bucketOf(kind: StorageKind): string {
  return kind === 'timescaledb'
    ? `time_bucket(make_interval(secs => $5), bucket, ${ORIGIN})`
    : `date_bin(make_interval(secs => $5), bucket, ${ORIGIN})`;
}

const COUNTS = ['requests', ...STATUS_CLASSES.map((c) => `status_${c}`), 'request_bytes', 'response_bytes'];

/** Per step: the sums, and the highest total of open connections at any minute (or hour peak). */
export function requestsStatement(kind: StorageKind, hourly: boolean): string {
  const source = hourly ? 'deployment_requests_hourly' : 'request_metrics';
  const open = hourly ? 'open_connections_max' : 'open_connections';
  return `WITH per_bucket AS (
  SELECT bucket, ${COUNTS.map((c) => `sum(${c}::float8) AS ${c}`).join(', ')},
    sum(duration_sum)::float8 AS duration_sum, sum(duration_count::float8) AS duration_count,
    sum(${open})::float8 AS open_connections
  FROM ${source} WHERE deployment_id = $1 AND bucket >= $2 AND bucket < $3
  GROUP BY bucket)
SELECT (extract(epoch FROM b) * 1000)::float8 AS t, ${COUNTS.map((c) => `sum(${c}) AS ${c}`).join(', ')},
  sum(duration_sum) AS duration_sum, sum(duration_count) AS duration_count, max(open_connections) AS open_connections
FROM (SELECT ${bucketOf(kind)} AS b, * FROM per_bucket) m
GROUP BY b ORDER BY b LIMIT $4`;
}

export function latencyStatement(kind: StorageKind, hourly: boolean): string {
  const source = hourly ? 'deployment_latency_hourly' : 'request_latency';
  return `SELECT (extract(epoch FROM b) * 1000)::float8 AS t, le, sum(count::float8) AS count
FROM (SELECT ${bucketOf(kind)} AS b, le, count FROM ${source}
      WHERE deployment_id = $1 AND bucket >= $2 AND bucket < $3) l
GROUP BY b, le ORDER BY b, le LIMIT $4`;
}

export interface RequestHistoryAnswer {
  readonly deploymentId: string;
  readonly from: number;
  readonly to: number;
  readonly stepMs: number;
  readonly resolution: 'minute' | 'hour';
  readonly t: readonly number[];
  readonly requests: readonly number[];
  readonly status: Readonly<Record<StatusClass, readonly number[]>>;
  readonly requestBytes: readonly number[];
  readonly responseBytes: readonly number[];
  readonly latencyMs: {
    readonly p50: (number | null)[];
    readonly p95: (number | null)[];
    readonly p99: (number | null)[];
  };
  readonly meanLatencyMs: readonly (number | null)[];
  readonly openConnectionsMax: readonly (number | null)[];
}

type Row = Record<string, number>;

export class RequestHistory {
  constructor(
    private readonly deps: { metricsPool: Pick<pg.Pool, 'query'>; storageKind: () => StorageKind | undefined },
  ) {}

  /** undefined while the storage kind is unknown (the database is starting). */
  async query(plan: HistoryPlan): Promise<RequestHistoryAnswer | undefined> {
    const kind = this.deps.storageKind();
    if (kind === undefined) return undefined;
    const hourly = plan.resolution === 'hour';
    const values = [plan.deploymentId, new Date(plan.from), new Date(plan.to), plan.points, plan.stepMs / 1000];
    let counts: Row[] = [];
    let latency: Row[] = [];
    try {
      counts = (await this.deps.metricsPool.query<Row>(requestsStatement(kind, hourly), values)).rows;
      latency = (
        await this.deps.metricsPool.query<Row>(latencyStatement(kind, hourly), [
          ...values.slice(0, 3),
          plan.points * MAX_BOUNDS,
          values[4],
        ])
      ).rows;
    } catch (error) {
      // No instance has scraped Traefik yet: no tables, no requests.
      if ((error as { code?: string }).code !== '42P01') throw error;
    }
    const t = Array.from({ length: plan.points }, (_, i) => plan.from + i * plan.stepMs);
    const index = (ms: number) => Math.round((ms - plan.from) / plan.stepMs);
    const zeros = () => t.map(() => 0);
    const nulls = (): (number | null)[] => t.map(() => null);
    const answer = {
      requests: zeros(),
      status: Object.fromEntries(STATUS_CLASSES.map((c) => [c, zeros()])) as Record<StatusClass, number[]>,
      requestBytes: zeros(),
      responseBytes: zeros(),
      latencyMs: { p50: nulls(), p95: nulls(), p99: nulls() },
      meanLatencyMs: nulls(),
      openConnectionsMax: nulls(),
    };
    for (const row of counts) {
      const i = index(row.t!);
      if (i < 0 || i >= t.length) continue;
      answer.requests[i] = row.requests!;
      for (const c of STATUS_CLASSES) answer.status[c][i] = row[`status_${c}`]!;
      answer.requestBytes[i] = row.request_bytes!;
      answer.responseBytes[i] = row.response_bytes!;
      answer.meanLatencyMs[i] =
        row.duration_count! > 0 ? round((row.duration_sum! / row.duration_count!) * 1000) : null;
      answer.openConnectionsMax[i] = row.open_connections ?? null;
    }
    let at = 0;
    while (at < latency.length) {
      const ms = latency[at]!.t!;
      const buckets: { le: number; count: number }[] = [];
      for (; at < latency.length && latency[at]!.t === ms; at++)
        buckets.push({ le: Number(latency[at]!.le), count: latency[at]!.count! });
      const i = index(ms);
      if (i < 0 || i >= t.length) continue;
      for (const [name, q] of [
        ['p50', 0.5],
        ['p95', 0.95],
        ['p99', 0.99],
      ] as const) {
        const seconds = histogramQuantile(q, buckets);
        answer.latencyMs[name][i] = seconds === undefined ? null : round(seconds * 1000);
      }
    }
    return {
      deploymentId: plan.deploymentId,
      from: plan.from,
      to: plan.to,
      stepMs: plan.stepMs,
      resolution: plan.resolution,
      t,
      ...answer,
    };
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
