/**
 * The SQL of aggregate storage, as data: which statements run for TimescaleDB and which for plain
 * PostgreSQL. Kept free of I/O so unit tests can check exactly what each path issues (there is no
 * TimescaleDB to test against here).
 *
 * Both paths share one table shape, `container_metrics` (one row per container and minute), and
 * one rollup, `deployment_metrics_hourly` (a continuous aggregate with TimescaleDB, a table the
 * service fills without it).
 */

import { compression, hourlyRollup, hypertable, retentionPolicy } from './timescale-statements.js';

export type StorageKind = 'timescaledb' | 'postgres';

export interface RetentionOptions {
  readonly retentionDays: number;
  readonly rollupRetentionDays: number;
}

const COLUMNS = `
  bucket            timestamptz      NOT NULL,
  container_id      text             NOT NULL,
  deployment_id     text             NOT NULL,
  node_id           text             NOT NULL,
  service_id        text,
  cpu_avg           double precision,
  cpu_max           double precision,
  memory_avg        bigint,
  memory_max        bigint,
  net_rx_bytes      bigint           NOT NULL,
  net_tx_bytes      bigint           NOT NULL,
  block_read_bytes  bigint           NOT NULL,
  block_write_bytes bigint           NOT NULL,
  samples           integer          NOT NULL,
  cpu_throttled_periods bigint,
  cpu_throttled_seconds double precision,
  oom_kills         integer,
  exits             integer,
  PRIMARY KEY (container_id, bucket)`;

/**
 * Columns added after the first release: tables created before them get them here (nullable, so
 * this is instant, and allowed on a compressed hypertable). Rows written before have nulls.
 */
const ADDED_COLUMNS = [
  `ALTER TABLE container_metrics ADD COLUMN IF NOT EXISTS cpu_throttled_periods bigint`,
  `ALTER TABLE container_metrics ADD COLUMN IF NOT EXISTS cpu_throttled_seconds double precision`,
  `ALTER TABLE container_metrics ADD COLUMN IF NOT EXISTS oom_kills integer`,
  `ALTER TABLE container_metrics ADD COLUMN IF NOT EXISTS exits integer`,
];

/** The hourly rollup's aggregates, the same on both paths. */
const ROLLUP_SELECT = (bucket: string) => `
  ${bucket} AS bucket,
  deployment_id,
  avg(cpu_avg)           AS cpu_avg,
  max(cpu_max)           AS cpu_max,
  avg(memory_avg)::bigint AS memory_avg,
  max(memory_max)        AS memory_max,
  sum(net_rx_bytes)      AS net_rx_bytes,
  sum(net_tx_bytes)      AS net_tx_bytes,
  sum(block_read_bytes)  AS block_read_bytes,
  sum(block_write_bytes) AS block_write_bytes,
  sum(samples)           AS samples,
  count(*)               AS container_minutes`;

/**
 * The history API's index: one deployment's rows in time order, carrying the figures it sums, so
 * a day of a deployment is read from the index alone (bench/history.ts). It replaces the plain
 * (deployment_id, bucket) index of earlier versions; building it on an existing table takes a while
 * (rows wait in the store's buffer meanwhile), once.
 */
const DEPLOYMENT_INDEX = [
  `CREATE INDEX IF NOT EXISTS container_metrics_deployment_cover_idx ON container_metrics (deployment_id, bucket DESC)
  INCLUDE (cpu_avg, cpu_max, memory_avg, memory_max, net_rx_bytes, net_tx_bytes, block_read_bytes, block_write_bytes)`,
  `DROP INDEX IF EXISTS container_metrics_deployment_idx`,
];

/** Statements that create the schema; each is idempotent. */
export function schemaStatements(
  kind: StorageKind,
  retention: RetentionOptions,
  options: { compression: boolean } = { compression: false },
): string[] {
  if (kind === 'timescaledb') {
    return [
      `CREATE TABLE IF NOT EXISTS container_metrics (${COLUMNS}\n)`,
      hypertable('container_metrics', '1 day'),
      ...ADDED_COLUMNS,
      ...DEPLOYMENT_INDEX,
      ...hourlyRollup('deployment_metrics_hourly', 'container_metrics', ROLLUP_SELECT, '1, deployment_id'),
      retentionPolicy('container_metrics', retention.retentionDays),
      retentionPolicy('deployment_metrics_hourly', retention.rollupRetentionDays),
      ...(options.compression
        ? compression('container_metrics', 'deployment_id, container_id', 'bucket DESC', '2 days')
        : []),
    ];
  }
  return [
    `CREATE TABLE IF NOT EXISTS container_metrics (${COLUMNS}\n) PARTITION BY RANGE (bucket)`,
    // BRIN: tiny, and rows arrive in time order, which is what it needs.
    `CREATE INDEX IF NOT EXISTS container_metrics_bucket_brin ON container_metrics USING brin (bucket)`,
    ...ADDED_COLUMNS,
    ...DEPLOYMENT_INDEX,
    `CREATE TABLE IF NOT EXISTS deployment_metrics_hourly (
  bucket            timestamptz      NOT NULL,
  deployment_id     text             NOT NULL,
  cpu_avg           double precision,
  cpu_max           double precision,
  memory_avg        bigint,
  memory_max        bigint,
  net_rx_bytes      bigint           NOT NULL,
  net_tx_bytes      bigint           NOT NULL,
  block_read_bytes  bigint           NOT NULL,
  block_write_bytes bigint           NOT NULL,
  samples           bigint           NOT NULL,
  container_minutes bigint           NOT NULL,
  PRIMARY KEY (deployment_id, bucket)
)`,
  ];
}

/** Statements that tell which path this database supports. */
export const DETECT_TIMESCALEDB = `SELECT
  EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') AS installed,
  EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') AS available`;
export const CREATE_TIMESCALEDB = `CREATE EXTENSION IF NOT EXISTS timescaledb`;
/** Compression is not in the Apache-licensed build. */
export const TIMESCALEDB_LICENSE = `SELECT current_setting('timescaledb.license', true) AS license`;

/** One batched insert for any number of rows: one array parameter per column. */
export const INSERT_AGGREGATES = `INSERT INTO container_metrics (bucket, container_id, deployment_id, node_id, service_id, cpu_avg, cpu_max,
  memory_avg, memory_max, net_rx_bytes, net_tx_bytes, block_read_bytes, block_write_bytes, samples,
  cpu_throttled_periods, cpu_throttled_seconds, oom_kills, exits)
SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::float8[],
  $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::int[],
  $15::bigint[], $16::float8[], $17::int[], $18::int[])
ON CONFLICT (container_id, bucket) DO NOTHING`;

/** The naive way, for the benchmark's baseline: one statement per row. */
export const INSERT_AGGREGATE_ROW = `INSERT INTO container_metrics (bucket, container_id, deployment_id, node_id, service_id, cpu_avg, cpu_max,
  memory_avg, memory_max, net_rx_bytes, net_tx_bytes, block_read_bytes, block_write_bytes, samples,
  cpu_throttled_periods, cpu_throttled_seconds, oom_kills, exits)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
ON CONFLICT (container_id, bucket) DO NOTHING`;

/** Plain PostgreSQL: a daily partition of `table`. Names carry the day (container_metrics_p20261122). */
export function partitionName(day: Date, table = 'container_metrics'): string {
  return `${table}_p${day.toISOString().slice(0, 10).replaceAll('-', '')}`;
}

export function createPartitionStatement(day: Date, table = 'container_metrics'): string {
  const from = startOfDay(day);
  const to = new Date(from.getTime() + 86_400_000);
  return `CREATE TABLE IF NOT EXISTS ${partitionName(from, table)} PARTITION OF ${table} FOR VALUES FROM ('${from.toISOString()}') TO ('${to.toISOString()}')`;
}

/** The partitions of a table: `$1` is its name. */
export const LIST_PARTITIONS = `SELECT c.relname AS name FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
  WHERE p.relname = $1`;

/** Partitions of `table` entirely older than the retention period (by the day in their name). */
export function expiredPartitions(
  names: readonly string[],
  now: Date,
  retentionDays: number,
  table = 'container_metrics',
): string[] {
  const cutoff = startOfDay(new Date(now.getTime() - retentionDays * 86_400_000)).getTime();
  const pattern = new RegExp(`^${table}_p(\\d{4})(\\d{2})(\\d{2})$`);
  return names.filter((name) => {
    const match = pattern.exec(name);
    if (!match) return false;
    const end = Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])) + 86_400_000;
    return end <= cutoff;
  });
}

/** Plain PostgreSQL: (re)computes the hourly rollup of [from, to), idempotently. */
export const ROLLUP_HOURS = `INSERT INTO deployment_metrics_hourly
  (bucket, deployment_id, cpu_avg, cpu_max, memory_avg, memory_max, net_rx_bytes, net_tx_bytes, block_read_bytes, block_write_bytes, samples, container_minutes)
SELECT ${ROLLUP_SELECT("date_trunc('hour', bucket)")}
FROM container_metrics
WHERE bucket >= $1 AND bucket < $2
GROUP BY 1, deployment_id
ON CONFLICT (deployment_id, bucket) DO UPDATE SET
  cpu_avg = EXCLUDED.cpu_avg, cpu_max = EXCLUDED.cpu_max, memory_avg = EXCLUDED.memory_avg, memory_max = EXCLUDED.memory_max,
  net_rx_bytes = EXCLUDED.net_rx_bytes, net_tx_bytes = EXCLUDED.net_tx_bytes, block_read_bytes = EXCLUDED.block_read_bytes,
  block_write_bytes = EXCLUDED.block_write_bytes, samples = EXCLUDED.samples, container_minutes = EXCLUDED.container_minutes`;

/** TimescaleDB: materialises the hourly rollup of [from, to) (whole hours), for rows written late. */
export const REFRESH_HOURLY = `CALL refresh_continuous_aggregate('deployment_metrics_hourly', $1::timestamptz, $2::timestamptz)`;

export const DELETE_OLD_ROLLUPS = `DELETE FROM deployment_metrics_hourly WHERE bucket < $1`;

export function startOfDay(date: Date): Date {
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()));
}
