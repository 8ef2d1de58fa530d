/**
 * The TimescaleDB recipe every store of minute rows follows (container, request and node
 * metrics): a hypertable, an hourly continuous aggregate answered in real time and refreshed by a
 * policy, retention policies, and compression outside the Apache build. Each statement is
 * idempotent; the numbers interpolated are whole days, checked here.
 */

/** A retention in whole days (at least one): the only number these statements interpolate. */
export function wholeDays(value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new Error(`retention must be a whole number of days, got ${value}`);
  return value;
}

export function hypertable(table: string, chunk: '1 day' | '7 days'): string {
  return `SELECT create_hypertable('${table}', by_range('bucket', INTERVAL '${chunk}'), if_not_exists => TRUE)`;
}

/**
 * An hourly continuous aggregate of `table`: `select` takes the bucket expression. Real-time
 * aggregation: the hours not yet materialised are computed from the minute rows at query time,
 * so hourly answers reach up to now. The policy refreshes the last three hours every 5 minutes.
 */
export function hourlyRollup(
  view: string,
  table: string,
  select: (bucket: string) => string,
  groupBy: string,
): string[] {
  return [
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${view} WITH (timescaledb.continuous) AS
SELECT ${select("time_bucket(INTERVAL '1 hour', bucket)")}
FROM ${table}
GROUP BY ${groupBy}
WITH NO DATA`,
    `ALTER MATERIALIZED VIEW ${view} SET (timescaledb.materialized_only = false)`,
    `SELECT add_continuous_aggregate_policy('${view}', start_offset => INTERVAL '3 hours', end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '5 minutes', if_not_exists => TRUE)`,
  ];
}

export function retentionPolicy(relation: string, days: number): string {
  return `SELECT add_retention_policy('${relation}', INTERVAL '${wholeDays(days)} days', if_not_exists => TRUE)`;
}

/** Compression of `table`'s chunks older than `after`, segmented and ordered as its readers read. */
export function compression(table: string, segmentBy: string, orderBy: string, after: '2 days' | '7 days'): string[] {
  return [
    `ALTER TABLE ${table} SET (timescaledb.compress, timescaledb.compress_segmentby = '${segmentBy}', timescaledb.compress_orderby = '${orderBy}')`,
    `SELECT add_compression_policy('${table}', INTERVAL '${after}', if_not_exists => TRUE)`,
  ];
}
