/**
 * Reads stored history for UIs: runs a planned query (history-params.ts) and shapes it into
 * columns on one shared time axis, ready for a chart (`t` plus one array per figure, null where a
 * bucket has no rows). Also lists the deployments a token may see, with their containers now.
 *
 * Per deployment, CPU and memory are mean totals: the sum over the deployment's container-minutes
 * divided by the minutes the bucket covers. A bucket is covered up to the end of the newest row in
 * the answer (minute rows land about a minute after their minute ends), so the bucket in progress
 * is not understated.
 */
import type pg from 'pg';
import type { StorageKind } from '../metrics/storage-schema.js';
import type { HistoryPlan } from './history-params.js';
import { DEPLOYMENT_LIST, historyQuery, type HistoryRow } from './history-sql.js';

/** A per-container answer is for dashboards, not exports: more containers should ask per deployment. */
export const MAX_CONTAINER_SERIES = 100;
const MAX_LISTED_CONTAINERS = 20_000;
const MINUTE = 60_000;
const HOUR = 3_600_000;

type Column = Array<number | null>;

export interface DeploymentFigures {
  /** Percent of one CPU (200 = two CPUs busy). */
  readonly cpuAvg: Column;
  readonly cpuMax: Column;
  readonly memoryAvg: Column;
  readonly memoryMax: Column;
  /** Bytes moved within the bucket. */
  readonly netRxBytes: Column;
  readonly netTxBytes: Column;
  readonly blockReadBytes: Column;
  readonly blockWriteBytes: Column;
}

export interface HistoryAnswer {
  readonly deploymentId: string;
  readonly from: number;
  readonly to: number;
  readonly stepMs: number;
  readonly resolution: 'minute' | 'hour';
  readonly per: 'deployment' | 'container';
  /** Bucket starts, ms since the epoch. */
  readonly t: number[];
  readonly units: Readonly<Record<string, string>>;
  /** per=deployment: totals, plus the mean number of containers. */
  readonly deployment?: DeploymentFigures & { readonly containers: Column };
  /** per=container: each container's own figures. */
  readonly containers?: Array<DeploymentFigures & { readonly containerId: string; readonly nodeId: string | null }>;
}

const UNITS = {
  t: 'ms since the epoch (bucket start)',
  cpuAvg: 'percent of one CPU, mean over the bucket',
  cpuMax: 'percent of one CPU, highest single container',
  memoryAvg: 'bytes, mean over the bucket',
  memoryMax: 'bytes, highest single container',
  netRxBytes: 'bytes in the bucket',
  netTxBytes: 'bytes in the bucket',
  blockReadBytes: 'bytes in the bucket',
  blockWriteBytes: 'bytes in the bucket',
  containers: 'containers, mean over the bucket',
};

export class HistoryUnavailableError extends Error {}
export class TooManyContainersError extends Error {}

export interface ListedDeployment {
  readonly deploymentId: string;
  readonly containers: Array<{
    containerId: string;
    nodeId: string;
    nodeHostname: string | null;
    serviceId: string | null;
    taskId: string | null;
    status: string;
    health: string | null;
  }>;
  readonly nodes: string[];
}

export class HistoryService {
  constructor(
    private readonly deps: {
      /** Where the minute rows and rollups are (METRICS_DATABASE_URL, or the main database). */
      metricsPool: Pick<pg.Pool, 'query'>;
      /** undefined until the metrics schema is known (the database may still be starting). */
      storageKind: () => StorageKind | undefined;
      /** The main database, with the router's deployment_locations; ready once migrated. */
      locations: { pool: Pick<pg.Pool, 'query'>; isReady: () => boolean };
    },
  ) {}

  async query(plan: HistoryPlan, now = Date.now()): Promise<HistoryAnswer> {
    const kind = this.deps.storageKind();
    if (kind === undefined) throw new HistoryUnavailableError('metrics storage is not ready yet');
    const perContainer = plan.per === 'container';
    const limit = perContainer ? plan.points * MAX_CONTAINER_SERIES + 1 : plan.points;
    const { text, values } = historyQuery(kind, plan, limit);
    const { rows } = await this.deps.metricsPool.query<HistoryRow>(text, values);
    const t = Array.from({ length: plan.points }, (_, i) => plan.from + i * plan.stepMs);
    const base = {
      deploymentId: plan.deploymentId,
      from: plan.from,
      to: plan.to,
      stepMs: plan.stepMs,
      resolution: plan.resolution,
      per: plan.per,
      t,
      units: UNITS,
    };
    if (perContainer) return { ...base, containers: containerSeries(plan, rows) };
    return { ...base, deployment: deploymentSeries(plan, rows, now) };
  }

  /** Deployments with a container in the router's table, restricted to `allowed` when given. */
  async listDeployments(allowed: ReadonlySet<string> | undefined): Promise<ListedDeployment[]> {
    if (!this.deps.locations.isReady()) throw new HistoryUnavailableError('the database is not ready yet');
    const { rows } = await this.deps.locations.pool.query<{
      deployment_id: string;
      container_id: string;
      node_id: string;
      node_hostname: string | null;
      service_id: string | null;
      task_id: string | null;
      status: string;
      health_status: string | null;
    }>(DEPLOYMENT_LIST, [allowed ? [...allowed] : null, MAX_LISTED_CONTAINERS]);
    const byId = new Map<string, ListedDeployment>();
    for (const row of rows) {
      let entry = byId.get(row.deployment_id);
      if (!entry) byId.set(row.deployment_id, (entry = { deploymentId: row.deployment_id, containers: [], nodes: [] }));
      entry.containers.push({
        containerId: row.container_id,
        nodeId: row.node_id,
        nodeHostname: row.node_hostname,
        serviceId: row.service_id,
        taskId: row.task_id,
        status: row.status,
        health: row.health_status,
      });
      if (!entry.nodes.includes(row.node_id)) entry.nodes.push(row.node_id);
    }
    return [...byId.values()];
  }
}

function emptyFigures(points: number): DeploymentFigures {
  const column = (): Column => new Array<number | null>(points).fill(null);
  return {
    cpuAvg: column(),
    cpuMax: column(),
    memoryAvg: column(),
    memoryMax: column(),
    netRxBytes: column(),
    netTxBytes: column(),
    blockReadBytes: column(),
    blockWriteBytes: column(),
  };
}

function slot(plan: HistoryPlan, t: number): number | undefined {
  const index = Math.round((t - plan.from) / plan.stepMs);
  return index >= 0 && index < plan.points ? index : undefined;
}

function deploymentSeries(plan: HistoryPlan, rows: readonly HistoryRow[], now: number) {
  const figures = { ...emptyFigures(plan.points), containers: new Array<number | null>(plan.points).fill(null) };
  const rowMs = plan.resolution === 'hour' ? HOUR : MINUTE;
  // Buckets are covered up to the end of the newest stored row (and never past now), not to `to`.
  let dataEnd = plan.from;
  for (const row of rows) dataEnd = Math.max(dataEnd, row.last_ms + rowMs);
  dataEnd = Math.min(dataEnd, now);
  for (const row of rows) {
    const i = slot(plan, row.t);
    if (i === undefined) continue;
    const coveredMs = Math.max(MINUTE, Math.min(row.t + plan.stepMs, dataEnd) - row.t);
    const minutes = coveredMs / MINUTE;
    figures.cpuAvg[i] = row.cpu_sum == null ? null : round(row.cpu_sum / minutes, 2);
    figures.cpuMax[i] = row.cpu_max;
    figures.memoryAvg[i] = row.memory_sum == null ? null : Math.round(row.memory_sum / minutes);
    figures.memoryMax[i] = row.memory_max;
    figures.netRxBytes[i] = row.net_rx;
    figures.netTxBytes[i] = row.net_tx;
    figures.blockReadBytes[i] = row.block_read;
    figures.blockWriteBytes[i] = row.block_write;
    figures.containers[i] = round(row.container_minutes / minutes, 2);
  }
  return figures;
}

function containerSeries(plan: HistoryPlan, rows: readonly HistoryRow[]) {
  const series = new Map<string, DeploymentFigures & { containerId: string; nodeId: string | null }>();
  for (const row of rows) {
    const id = row.container_id!;
    let entry = series.get(id);
    if (!entry) {
      if (series.size >= MAX_CONTAINER_SERIES)
        throw new TooManyContainersError(
          `more than ${MAX_CONTAINER_SERIES} containers in this range; ask per=deployment or a shorter range`,
        );
      series.set(id, (entry = { containerId: id, nodeId: row.node_id ?? null, ...emptyFigures(plan.points) }));
    }
    const i = slot(plan, row.t);
    if (i === undefined) continue;
    entry.cpuAvg[i] = row.cpu_avg == null ? null : round(row.cpu_avg, 2);
    entry.cpuMax[i] = row.cpu_max;
    entry.memoryAvg[i] = row.memory_avg == null ? null : Math.round(row.memory_avg);
    entry.memoryMax[i] = row.memory_max;
    entry.netRxBytes[i] = row.net_rx;
    entry.netTxBytes[i] = row.net_tx;
    entry.blockReadBytes[i] = row.block_read;
    entry.blockWriteBytes[i] = row.block_write;
  }
  return [...series.values()];
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
