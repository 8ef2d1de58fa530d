/**
 * Stored node history for UIs: GET /api/v1/nodes/{id}/metrics, planned like the container history
 * (history/history-params.ts: from, to, step; `per` is not taken). Steps of whole hours read the
 * hourly rollup. Buckets are re-cut from one origin, as the other histories do. Means are of the
 * minutes' means (each minute weighs the same), peaks are peaks, bytes are sums.
 */
import type pg from 'pg';
import type { HistoryPlan } from '../history/history-params.js';
import type { StorageKind } from '../metrics/storage-schema.js';

const ORIGIN = `TIMESTAMPTZ '2000-01-01 00:00:00+00'`;

const SERIES = {
  cpuAvg: 'avg(cpu_avg)',
  cpuMax: 'max(cpu_max)',
  load1Avg: 'avg(load1_avg)',
  load1Max: 'max(load1_max)',
  memoryTotal: 'max(memory_total)',
  memoryUsedAvg: 'avg(memory_used_avg)',
  memoryUsedMax: 'max(memory_used_max)',
  swapUsedMax: 'max(swap_used_max)',
  diskUsed: 'max(disk_used)',
  diskTotal: 'max(disk_total)',
  diskReadBytes: 'sum(disk_read_bytes)',
  diskWriteBytes: 'sum(disk_write_bytes)',
  netRxBytes: 'sum(net_rx_bytes)',
  netTxBytes: 'sum(net_tx_bytes)',
  runningContainersMax: 'max(running_containers_max)',
  runningDeploymentsMax: 'max(running_deployments_max)',
} as const;
type Series = keyof typeof SERIES;
const NAMES = Object.keys(SERIES) as Series[];
/** Summed series: a step without rows is 0, not unknown. */
const SUMS = new Set<Series>(['diskReadBytes', 'diskWriteBytes', 'netRxBytes', 'netTxBytes']);

export function nodeHistoryStatement(kind: StorageKind, hourly: boolean): string {
  const bucket =
    kind === 'timescaledb'
      ? `time_bucket(make_interval(secs => $5), bucket, ${ORIGIN})`
      : `date_bin(make_interval(secs => $5), bucket, ${ORIGIN})`;
  return `SELECT (extract(epoch FROM b) * 1000)::float8 AS t,
  ${NAMES.map((name) => `${SERIES[name]}::float8 AS "${name}"`).join(',\n  ')}
FROM (SELECT ${bucket} AS b, * FROM ${hourly ? 'node_metrics_hourly' : 'node_metrics'}
      WHERE node_id = $1 AND bucket >= $2 AND bucket < $3) m
GROUP BY b ORDER BY b LIMIT $4`;
}

export type NodeHistoryAnswer = {
  readonly nodeId: string;
  readonly from: number;
  readonly to: number;
  readonly stepMs: number;
  readonly resolution: 'minute' | 'hour';
  readonly t: readonly number[];
} & { readonly [name in Series]: readonly (number | null)[] };

export class NodeHistory {
  constructor(
    private readonly deps: { metricsPool: Pick<pg.Pool, 'query'>; storageKind: () => StorageKind | undefined },
  ) {}

  /** `plan` as planHistory made it for the node's id; undefined while the storage kind is unknown. */
  async query(nodeId: string, plan: HistoryPlan): Promise<NodeHistoryAnswer | undefined> {
    const kind = this.deps.storageKind();
    if (kind === undefined) return undefined;
    let rows: Record<string, number | null>[] = [];
    try {
      rows = (
        await this.deps.metricsPool.query<Record<string, number | null>>(
          nodeHistoryStatement(kind, plan.resolution === 'hour'),
          [nodeId, new Date(plan.from), new Date(plan.to), plan.points, plan.stepMs / 1000],
        )
      ).rows;
    } catch (error) {
      // No node has written a minute yet: no table, no history.
      if ((error as { code?: string }).code !== '42P01') throw error;
    }
    const t = Array.from({ length: plan.points }, (_, i) => plan.from + i * plan.stepMs);
    const series = Object.fromEntries(NAMES.map((name) => [name, t.map(() => (SUMS.has(name) ? 0 : null))])) as Record<
      Series,
      (number | null)[]
    >;
    for (const row of rows) {
      const i = Math.round((row.t! - plan.from) / plan.stepMs);
      if (i < 0 || i >= t.length) continue;
      for (const name of NAMES) {
        const value = row[name];
        if (value !== null && value !== undefined) series[name][i] = Math.round(value * 1000) / 1000;
      }
    }
    return {
      nodeId,
      from: plan.from,
      to: plan.to,
      stepMs: plan.stepMs,
      resolution: plan.resolution,
      t,
      ...series,
    };
  }
}
