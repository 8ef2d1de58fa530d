/**
 * The SQL of node history, as data (see metrics/storage-schema.ts for the container tables):
 * `node_metrics`, one row per node and minute (node-minutes.ts), and its hourly rollup
 * `node_metrics_hourly` (a continuous aggregate with TimescaleDB, a table the service fills
 * without it). Each node writes its own rows; the statements are idempotent, so two nodes
 * creating the schema or a node retrying a write after an unknown outcome change nothing.
 */
import type { StorageKind } from '../metrics/storage-schema.js';
import { compression, hourlyRollup, hypertable, retentionPolicy } from '../metrics/timescale-statements.js';

export interface NodeRetention {
  readonly retentionDays: number;
  readonly rollupRetentionDays: number;
}

export const NODE_TABLE = 'node_metrics';

const COLUMNS = `
  bucket                 timestamptz      NOT NULL,
  node_id                text             NOT NULL,
  cpu_avg                double precision,
  cpu_max                double precision,
  load1_avg              double precision,
  load1_max              double precision,
  memory_total           bigint,
  memory_used_avg        bigint,
  memory_used_max        bigint,
  swap_used_max          bigint,
  disk_used              bigint,
  disk_total             bigint,
  disk_read_bytes        bigint           NOT NULL,
  disk_write_bytes       bigint           NOT NULL,
  net_rx_bytes           bigint           NOT NULL,
  net_tx_bytes           bigint           NOT NULL,
  running_containers_max integer,
  running_deployments_max integer,
  samples                integer          NOT NULL,
  PRIMARY KEY (node_id, bucket)`;

/** The plain-PostgreSQL rollup table: the minute table's columns, sums widened, and its minute count. */
const HOURLY_COLUMNS = COLUMNS.replace('samples                integer ', 'samples                bigint  ').replace(
  '  PRIMARY KEY (node_id, bucket)',
  '  minutes                bigint           NOT NULL,\n  PRIMARY KEY (node_id, bucket)',
);

/** The rollup's aggregates, the same on both paths. */
const HOURLY_SELECT = (bucket: string) => `
  ${bucket} AS bucket,
  node_id,
  avg(cpu_avg)                  AS cpu_avg,
  max(cpu_max)                  AS cpu_max,
  avg(load1_avg)                AS load1_avg,
  max(load1_max)                AS load1_max,
  max(memory_total)             AS memory_total,
  avg(memory_used_avg)::bigint  AS memory_used_avg,
  max(memory_used_max)          AS memory_used_max,
  max(swap_used_max)            AS swap_used_max,
  max(disk_used)                AS disk_used,
  max(disk_total)               AS disk_total,
  sum(disk_read_bytes)::bigint  AS disk_read_bytes,
  sum(disk_write_bytes)::bigint AS disk_write_bytes,
  sum(net_rx_bytes)::bigint     AS net_rx_bytes,
  sum(net_tx_bytes)::bigint     AS net_tx_bytes,
  max(running_containers_max)   AS running_containers_max,
  max(running_deployments_max)  AS running_deployments_max,
  sum(samples)::bigint          AS samples,
  count(*)                      AS minutes`;

export function nodeSchemaStatements(
  kind: StorageKind,
  retention: NodeRetention,
  options: { compression: boolean } = { compression: false },
): string[] {
  if (kind === 'timescaledb') {
    return [
      `CREATE TABLE IF NOT EXISTS node_metrics (${COLUMNS}\n)`,
      // A node writes 1,440 rows a day: week-long chunks keep a cluster's chunks few and full.
      hypertable('node_metrics', '7 days'),
      ...hourlyRollup('node_metrics_hourly', 'node_metrics', HOURLY_SELECT, '1, node_id'),
      retentionPolicy('node_metrics', retention.retentionDays),
      retentionPolicy('node_metrics_hourly', retention.rollupRetentionDays),
      ...(options.compression ? compression('node_metrics', 'node_id', 'bucket DESC', '7 days') : []),
    ];
  }
  return [
    `CREATE TABLE IF NOT EXISTS node_metrics (${COLUMNS}\n) PARTITION BY RANGE (bucket)`,
    `CREATE TABLE IF NOT EXISTS node_metrics_hourly (${HOURLY_COLUMNS}\n)`,
  ];
}

const ROW_COLUMNS = [
  'bucket',
  'node_id',
  'cpu_avg',
  'cpu_max',
  'load1_avg',
  'load1_max',
  'memory_total',
  'memory_used_avg',
  'memory_used_max',
  'swap_used_max',
  'disk_used',
  'disk_total',
  'disk_read_bytes',
  'disk_write_bytes',
  'net_rx_bytes',
  'net_tx_bytes',
  'running_containers_max',
  'running_deployments_max',
  'samples',
] as const;
const TYPES = [
  'timestamptz',
  'text',
  'float8',
  'float8',
  'float8',
  'float8',
  'bigint',
  'bigint',
  'bigint',
  'bigint',
  'bigint',
  'bigint',
  'bigint',
  'bigint',
  'bigint',
  'bigint',
  'int',
  'int',
  'int',
] as const;

/** One batched insert of any number of minutes; a minute already stored is left as it is. */
export const INSERT_NODE_MINUTES = `INSERT INTO node_metrics (${ROW_COLUMNS.join(', ')})
SELECT * FROM unnest(${TYPES.map((t, i) => `$${i + 1}::${t}[]`).join(', ')})
ON CONFLICT (node_id, bucket) DO NOTHING`;

export const NODE_INSERT_COLUMNS = ROW_COLUMNS.length;

/** Plain PostgreSQL: (re)computes the hourly rollup of [from, to), idempotently. */
export const ROLLUP_NODE_HOURS = `INSERT INTO node_metrics_hourly (${ROW_COLUMNS.join(', ')}, minutes)
SELECT ${HOURLY_SELECT("date_trunc('hour', bucket)")}
FROM node_metrics
WHERE bucket >= $1 AND bucket < $2
GROUP BY 1, node_id
ON CONFLICT (node_id, bucket) DO UPDATE SET
${[...ROW_COLUMNS.slice(2), 'minutes'].map((c) => `  ${c} = EXCLUDED.${c}`).join(',\n')}`;

export const REFRESH_NODE_HOURLY = `CALL refresh_continuous_aggregate('node_metrics_hourly', $1::timestamptz, $2::timestamptz)`;
export const DELETE_OLD_NODE_ROLLUPS = `DELETE FROM node_metrics_hourly WHERE bucket < $1`;
