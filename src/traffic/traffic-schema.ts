/**
 * The SQL of request metrics, as data (see metrics/storage-schema.ts for the container tables).
 *
 * - `request_metrics`: one row per deployment, Traefik target and minute: requests by status class,
 *   bytes, the latency histogram's sum and count, and open connections at the minute's last scrape.
 * - `request_latency`: the latency histogram of the same rows, one row per bucket bound (cumulative
 *   count, as Prometheus keeps it), so quantiles over any window are recomputed from sums.
 * - hourly rollups of both (continuous aggregates with TimescaleDB, tables the service fills without).
 * - `traffic_checkpoints`: per target, the counters the stored minutes were measured up to, and a
 *   sequence number; `traffic_lease`: which instance scrapes (traffic-ledger.ts says why).
 *
 * Rows of one deployment and minute from different targets are separate: sums across targets
 * happen when reading.
 */
import type { StorageKind } from '../metrics/storage-schema.js';
import { compression, hourlyRollup, hypertable, retentionPolicy } from '../metrics/timescale-statements.js';

export interface TrafficRetention {
  readonly retentionDays: number;
  readonly rollupRetentionDays: number;
}

export const TRAFFIC_TABLES = ['request_metrics', 'request_latency'] as const;

const COUNT_COLUMNS = [
  'requests',
  'status_1xx',
  'status_2xx',
  'status_3xx',
  'status_4xx',
  'status_5xx',
  'status_other',
  'request_bytes',
  'response_bytes',
] as const;

const METRICS_COLUMNS = `
  bucket           timestamptz      NOT NULL,
  deployment_id    text             NOT NULL,
  target           text             NOT NULL,
${COUNT_COLUMNS.map((c) => `  ${c.padEnd(16)} bigint           NOT NULL,`).join('\n')}
  duration_sum     double precision NOT NULL,
  duration_count   bigint           NOT NULL,
  open_connections double precision NOT NULL,
  PRIMARY KEY (deployment_id, target, bucket)`;

const LATENCY_COLUMNS = `
  bucket        timestamptz      NOT NULL,
  deployment_id text             NOT NULL,
  target        text             NOT NULL,
  le            double precision NOT NULL,
  count         bigint           NOT NULL,
  PRIMARY KEY (deployment_id, target, le, bucket)`;

const HOURLY_METRICS_SELECT = (bucket: string) => `
  ${bucket} AS bucket,
  deployment_id,
${COUNT_COLUMNS.map((c) => `  sum(${c})::bigint AS ${c},`).join('\n')}
  sum(duration_sum) AS duration_sum,
  sum(duration_count)::bigint AS duration_count,
  max(open_connections) AS open_connections_max`;

const HOURLY_LATENCY_SELECT = (bucket: string) => `
  ${bucket} AS bucket,
  deployment_id,
  le,
  sum(count)::bigint AS count`;

const SHARED = [
  `CREATE TABLE IF NOT EXISTS traffic_checkpoints (
  target     text        PRIMARY KEY,
  seq        bigint      NOT NULL,
  minute     timestamptz NOT NULL,
  holder     text        NOT NULL,
  snapshot   bytea       NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
)`,
  `CREATE TABLE IF NOT EXISTS traffic_lease (
  name       text        PRIMARY KEY,
  holder     text        NOT NULL,
  expires_at timestamptz NOT NULL
)`,
];

export function trafficSchemaStatements(
  kind: StorageKind,
  retention: TrafficRetention,
  options: { compression: boolean } = { compression: false },
): string[] {
  if (kind === 'timescaledb') {
    return [
      ...SHARED,
      `CREATE TABLE IF NOT EXISTS request_metrics (${METRICS_COLUMNS}\n)`,
      hypertable('request_metrics', '1 day'),
      `CREATE TABLE IF NOT EXISTS request_latency (${LATENCY_COLUMNS}\n)`,
      hypertable('request_latency', '1 day'),
      ...hourlyRollup('deployment_requests_hourly', 'request_metrics', HOURLY_METRICS_SELECT, '1, deployment_id'),
      ...hourlyRollup('deployment_latency_hourly', 'request_latency', HOURLY_LATENCY_SELECT, '1, deployment_id, le'),
      ...TRAFFIC_TABLES.map((table) => retentionPolicy(table, retention.retentionDays)),
      ...['deployment_requests_hourly', 'deployment_latency_hourly'].map((view) =>
        retentionPolicy(view, retention.rollupRetentionDays),
      ),
      ...(options.compression
        ? [
            ...compression('request_metrics', 'deployment_id, target', 'bucket DESC', '2 days'),
            ...compression('request_latency', 'deployment_id, target', 'bucket DESC, le', '2 days'),
          ]
        : []),
    ];
  }
  return [
    ...SHARED,
    `CREATE TABLE IF NOT EXISTS request_metrics (${METRICS_COLUMNS}\n) PARTITION BY RANGE (bucket)`,
    `CREATE TABLE IF NOT EXISTS request_latency (${LATENCY_COLUMNS}\n) PARTITION BY RANGE (bucket)`,
    `CREATE TABLE IF NOT EXISTS deployment_requests_hourly (
  bucket               timestamptz      NOT NULL,
  deployment_id        text             NOT NULL,
${COUNT_COLUMNS.map((c) => `  ${c.padEnd(20)} bigint           NOT NULL,`).join('\n')}
  duration_sum         double precision NOT NULL,
  duration_count       bigint           NOT NULL,
  open_connections_max double precision,
  PRIMARY KEY (deployment_id, bucket)
)`,
    `CREATE TABLE IF NOT EXISTS deployment_latency_hourly (
  bucket        timestamptz      NOT NULL,
  deployment_id text             NOT NULL,
  le            double precision NOT NULL,
  count         bigint           NOT NULL,
  PRIMARY KEY (deployment_id, le, bucket)
)`,
  ];
}

/**
 * One minute's rows: added to a row already there (the same target and minute measured in two
 * pieces, after a handover), never replacing it. The checkpoint makes each piece land once.
 */
export const INSERT_REQUEST_METRICS = `INSERT INTO request_metrics (bucket, deployment_id, target, ${COUNT_COLUMNS.join(', ')},
  duration_sum, duration_count, open_connections)
SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], ${COUNT_COLUMNS.map((_, i) => `$${i + 4}::bigint[]`).join(', ')},
  $13::float8[], $14::bigint[], $15::float8[])
ON CONFLICT (deployment_id, target, bucket) DO UPDATE SET
${COUNT_COLUMNS.map((c) => `  ${c} = request_metrics.${c} + EXCLUDED.${c},`).join('\n')}
  duration_sum = request_metrics.duration_sum + EXCLUDED.duration_sum,
  duration_count = request_metrics.duration_count + EXCLUDED.duration_count,
  open_connections = EXCLUDED.open_connections`;

export const INSERT_REQUEST_LATENCY = `INSERT INTO request_latency (bucket, deployment_id, target, le, count)
SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::float8[], $5::bigint[])
ON CONFLICT (deployment_id, target, le, bucket) DO UPDATE SET count = request_latency.count + EXCLUDED.count`;

export const SELECT_CHECKPOINT = `SELECT seq::text AS seq, minute, holder, snapshot FROM traffic_checkpoints WHERE target = $1 FOR UPDATE`;
export const INSERT_CHECKPOINT = `INSERT INTO traffic_checkpoints (target, seq, minute, holder, snapshot) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (target) DO NOTHING`;
export const UPDATE_CHECKPOINT = `UPDATE traffic_checkpoints SET seq = $2, minute = $3, holder = $4, snapshot = $5, updated_at = now()
WHERE target = $1 AND seq = $6`;
export const READ_CHECKPOINT = `SELECT seq::text AS seq, minute, holder, snapshot FROM traffic_checkpoints WHERE target = $1`;

/**
 * Takes or renews the lease: it goes to `$2` when free, expired, or already its own. Returns the
 * holder after the statement.
 */
export const CLAIM_LEASE = `INSERT INTO traffic_lease AS l (name, holder, expires_at)
VALUES ($1, $2, now() + make_interval(secs => $3::float8 / 1000))
ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
  WHERE l.holder = EXCLUDED.holder OR l.expires_at < now()
RETURNING holder`;
export const RELEASE_LEASE = `DELETE FROM traffic_lease WHERE name = $1 AND holder = $2`;

/** Plain PostgreSQL: (re)computes the hourly rollups of [from, to), idempotently. */
export const ROLLUP_REQUESTS = `INSERT INTO deployment_requests_hourly
  (bucket, deployment_id, ${COUNT_COLUMNS.join(', ')}, duration_sum, duration_count, open_connections_max)
SELECT ${HOURLY_METRICS_SELECT("date_trunc('hour', bucket)")}
FROM request_metrics
WHERE bucket >= $1 AND bucket < $2
GROUP BY 1, deployment_id
ON CONFLICT (deployment_id, bucket) DO UPDATE SET
${COUNT_COLUMNS.map((c) => `  ${c} = EXCLUDED.${c},`).join('\n')}
  duration_sum = EXCLUDED.duration_sum, duration_count = EXCLUDED.duration_count,
  open_connections_max = EXCLUDED.open_connections_max`;
export const ROLLUP_LATENCY = `INSERT INTO deployment_latency_hourly (bucket, deployment_id, le, count)
SELECT ${HOURLY_LATENCY_SELECT("date_trunc('hour', bucket)")}
FROM request_latency
WHERE bucket >= $1 AND bucket < $2
GROUP BY 1, deployment_id, le
ON CONFLICT (deployment_id, le, bucket) DO UPDATE SET count = EXCLUDED.count`;
export const REFRESH_TRAFFIC_HOURLY = [
  `CALL refresh_continuous_aggregate('deployment_requests_hourly', $1::timestamptz, $2::timestamptz)`,
  `CALL refresh_continuous_aggregate('deployment_latency_hourly', $1::timestamptz, $2::timestamptz)`,
];
export const DELETE_OLD_TRAFFIC_ROLLUPS = [
  `DELETE FROM deployment_requests_hourly WHERE bucket < $1`,
  `DELETE FROM deployment_latency_hourly WHERE bucket < $1`,
];
