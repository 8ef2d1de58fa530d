/**
 * The history API's SQL, as data (like storage-schema.ts): unit tests check what each storage
 * path issues, since there is no TimescaleDB here. Buckets are re-cut in SQL with `time_bucket`
 * on TimescaleDB and `date_bin` on PostgreSQL, both from the same origin, so both paths return
 * the same bucket starts. Every value is a bound parameter; the step is whole seconds.
 *
 * Parameters: $1 deployment id, $2 from, $3 to (timestamptz), $4 row limit, $5 step in seconds.
 * When the step is the rows' own resolution (1 m on minute rows, 1 h on the rollup), the rows are
 * grouped as they are: no re-cutting, so the planner can aggregate in index order without a sort
 * (bench/history.ts).
 * Sums are taken over float8 (a bigint sum accumulates as numeric, twice as slow here) and come
 * back as float8: pg returns bigint and numeric as strings.
 */
import type { StorageKind } from '../metrics/storage-schema.js';
import type { HistoryPlan, Per, Resolution } from './history-params.js';

/** Shared by both paths: date_bin has no default origin, time_bucket's is a Monday in 2000. */
const ORIGIN = `TIMESTAMPTZ '2000-01-01 00:00:00+00'`;

function bucketExpression(kind: StorageKind, recut: boolean): string {
  if (!recut) return 'bucket';
  return kind === 'timescaledb'
    ? `time_bucket(make_interval(secs => $5), bucket, ${ORIGIN})`
    : `date_bin(make_interval(secs => $5), bucket, ${ORIGIN})`;
}

const TIME = `(extract(epoch FROM b) * 1000)::float8 AS t, (extract(epoch FROM max(bucket)) * 1000)::float8 AS last_ms`;

/**
 * The deployment's totals per bucket: sums over container-minutes (the caller divides CPU and
 * memory by the minutes the bucket covers, for the mean total), the highest single container's
 * maximum, bytes moved, and container-minutes.
 */
const DEPLOYMENT_FROM_MINUTES = (bucket: string) => `SELECT ${TIME},
  sum(cpu_avg::float8) AS cpu_sum, max(cpu_max)::float8 AS cpu_max,
  sum(memory_avg::float8) AS memory_sum, max(memory_max)::float8 AS memory_max,
  sum(net_rx_bytes::float8) AS net_rx, sum(net_tx_bytes::float8) AS net_tx,
  sum(block_read_bytes::float8) AS block_read, sum(block_write_bytes::float8) AS block_write,
  count(*)::float8 AS container_minutes
FROM (SELECT ${bucket} AS b, * FROM container_metrics
      WHERE deployment_id = $1 AND bucket >= $2 AND bucket < $3) m
GROUP BY b ORDER BY b LIMIT $4`;

/** The same figures from the hourly rollup, whose CPU and memory are means per container-minute. */
const DEPLOYMENT_FROM_HOURS = (bucket: string) => `SELECT ${TIME},
  sum(cpu_avg * container_minutes)::float8 AS cpu_sum, max(cpu_max)::float8 AS cpu_max,
  sum(memory_avg::float8 * container_minutes)::float8 AS memory_sum, max(memory_max)::float8 AS memory_max,
  sum(net_rx_bytes::float8) AS net_rx, sum(net_tx_bytes::float8) AS net_tx,
  sum(block_read_bytes::float8) AS block_read, sum(block_write_bytes::float8) AS block_write,
  sum(container_minutes::float8) AS container_minutes
FROM (SELECT ${bucket} AS b, * FROM deployment_metrics_hourly
      WHERE deployment_id = $1 AND bucket >= $2 AND bucket < $3) h
GROUP BY b ORDER BY b LIMIT $4`;

/** Each container's own means and maxima per bucket. */
const CONTAINERS_FROM_MINUTES = (bucket: string) => `SELECT container_id, max(node_id) AS node_id, ${TIME},
  avg(cpu_avg)::float8 AS cpu_avg, max(cpu_max)::float8 AS cpu_max,
  avg(memory_avg)::float8 AS memory_avg, max(memory_max)::float8 AS memory_max,
  sum(net_rx_bytes::float8) AS net_rx, sum(net_tx_bytes::float8) AS net_tx,
  sum(block_read_bytes::float8) AS block_read, sum(block_write_bytes::float8) AS block_write,
  count(*)::float8 AS container_minutes
FROM (SELECT ${bucket} AS b, * FROM container_metrics
      WHERE deployment_id = $1 AND bucket >= $2 AND bucket < $3) m
GROUP BY container_id, b ORDER BY container_id, b LIMIT $4`;

export function historyStatement(kind: StorageKind, per: Per, resolution: Resolution, recut = true): string {
  const bucket = bucketExpression(kind, recut);
  if (per === 'container') return CONTAINERS_FROM_MINUTES(bucket);
  return resolution === 'hour' ? DEPLOYMENT_FROM_HOURS(bucket) : DEPLOYMENT_FROM_MINUTES(bucket);
}

/** The statement and its values for a plan (`limit`: the most rows it may return). */
export function historyQuery(kind: StorageKind, plan: HistoryPlan, limit: number): { text: string; values: unknown[] } {
  const rowMs = plan.resolution === 'hour' ? 3_600_000 : 60_000;
  const recut = plan.stepMs !== rowMs;
  const values: unknown[] = [plan.deploymentId, new Date(plan.from), new Date(plan.to), limit];
  if (recut) values.push(plan.stepMs / 1000);
  return { text: historyStatement(kind, plan.per, plan.resolution, recut), values };
}

/** One row of any history statement (container_id and node_id only per container). */
export interface HistoryRow {
  readonly container_id?: string;
  readonly node_id?: string;
  readonly t: number;
  /** The newest stored row's bucket within this bucket. */
  readonly last_ms: number;
  readonly cpu_sum?: number | null;
  readonly cpu_avg?: number | null;
  readonly cpu_max: number | null;
  readonly memory_sum?: number | null;
  readonly memory_avg?: number | null;
  readonly memory_max: number | null;
  readonly net_rx: number;
  readonly net_tx: number;
  readonly block_read: number;
  readonly block_write: number;
  readonly container_minutes: number;
}

/** The deployments a grant may see, with their containers now (from the router's table). */
export const DEPLOYMENT_LIST = `SELECT deployment_id, container_id, node_id, node_hostname, service_id, task_id, status,
  health_status, (extract(epoch FROM updated_at) * 1000)::float8 AS updated_ms
FROM deployment_locations
WHERE $1::text[] IS NULL OR deployment_id = ANY($1::text[])
ORDER BY deployment_id, container_id
LIMIT $2`;
