/**
 * Node health as a part of the metrics role (registered by the metrics plugin on every node): the
 * host sampler every interval (each sample to the node feed), this node's minutes in the metrics
 * database (node_metrics and its hourly rollup), its usage in node_metadata and its containers'
 * in deployment_locations every minute, its Prometheus gauges, its /health component and its part
 * of /metrics/observability.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../lib/logger.js';
import { PeriodicJob } from '../lib/periodic-job.js';
import type { SharedParts } from '../shared-parts.js';
import { HostSampler, type HostSample } from './host-sampler.js';
import { LocationUsage, writeLocationUsage } from './location-usage.js';
import { MinuteUsage, writeNodeUsage, type Running } from './node-usage.js';
import type { ContainerHealth, Sample } from '../metrics/index.js';
import type { StorageKind } from '../metrics/storage-schema.js';
import type pg from 'pg';
import { NodeMinutes } from './node-minutes.js';
import { NodeStore } from './node-store.js';

export interface NodePluginOptions {
  readonly shared: SharedParts;
  /** This node's id once Docker told it (the collector asks at its first listing). */
  readonly nodeId: () => string | undefined;
  /** Running deployment containers and deployments on this node, from the latest collection. */
  readonly running: () => Running | undefined;
  /** Receives the part's report getter, for /metrics/observability. */
  readonly expose: (report: () => unknown) => void;
  /** Registers for every collection's samples (for deployment_locations' usage columns). */
  readonly onSamples: (listener: (samples: readonly Sample[]) => void) => void;
  /** Docker's health state of a local container at the last listing. */
  readonly healthOf: (containerId: string) => ContainerHealth | undefined;
  /** The metrics database (node minutes live next to the container minutes) and its storage kind. */
  readonly metricsPool: Pick<pg.Pool, 'query' | 'connect'>;
  /** After a failover of the metrics database, minutes written lately are written again. */
  readonly onPrimaryMove: (listener: () => void) => void;
  readonly storageKind: () => StorageKind | undefined;
  /** Each host sample, for the node feed. */
  readonly publishHost: (nodeId: string, host: HostSample) => void;
}

const USAGE_WRITE_MS = 60_000;
/** How often finished minutes are written (and retried while the database is away). */
const HISTORY_WRITE_MS = 15_000;
const MAINTENANCE_MS = 300_000;
/** A week of one node's minutes waits for the database; past that the oldest go, counted. */
const BUFFER_MAX_MINUTES = 7 * 1_440;

export function nodePlugin(app: FastifyInstance, options: NodePluginOptions, done: (error?: Error) => void): void {
  const { shared } = options;
  const { config, telemetry, health, database } = shared;
  const log: Logger = app.log.child({ module: 'nodes' });
  const sampler = new HostSampler(
    { procRoot: config.metrics.procRoot, diskPaths: config.nodes.diskPaths },
    {
      // Once per part, when it starts failing: a missing file is not worth a line per tick.
      onProblem: (problem) => log.warn(problem, `host ${problem.part} cannot be read; its figures are left out`),
    },
  );
  const minute = new MinuteUsage();
  const minutes = new NodeMinutes({ graceMs: config.metrics.intervalMs + 2_000 });
  const store = new NodeStore(
    {
      retentionDays: config.metrics.retentionDays,
      rollupRetentionDays: config.metrics.rollupRetentionDays,
      bufferMaxMinutes: BUFFER_MAX_MINUTES,
    },
    { pool: options.metricsPool, kind: options.storageKind, log },
  );
  options.onPrimaryMove(() => store.replayRecent());
  const locations = new LocationUsage();
  options.onSamples((samples) => locations.add(samples));
  let latest: HostSample | undefined;
  const s = {
    samples: 0,
    usageWrites: 0,
    usageSkipped: 0,
    usageFailures: 0,
    lastUsageWriteAt: undefined as number | undefined,
    locationRowsUpdated: 0,
  };

  const sampling = new PeriodicJob({
    name: 'host-sample',
    intervalMs: config.metrics.intervalMs,
    log,
    run: async () => {
      latest = await sampler.sample();
      minute.add(latest);
      s.samples += 1;
      const nodeId = options.nodeId();
      if (nodeId === undefined) return; // until Docker told it: nothing to file the sample under
      minutes.add(latest, options.running());
      options.publishHost(nodeId, latest);
    },
  });
  const usage = new PeriodicJob({
    name: 'node-usage',
    intervalMs: USAGE_WRITE_MS,
    firstRunJitterMs: 5_000,
    backoff: { baseMs: 5_000, maxMs: USAGE_WRITE_MS },
    log,
    run: async () => {
      const nodeId = options.nodeId();
      if (nodeId === undefined || !database.isReady()) return;
      // Taken first: a minute that cannot be written is dropped (the next carries current figures).
      const values = minute.take(nodeId, options.running());
      const rows = locations.take(options.healthOf);
      try {
        if (values) {
          if (await writeNodeUsage(database.pool, values)) s.usageWrites += 1;
          else s.usageSkipped += 1; // not listed by the router yet
        }
        if (rows) s.locationRowsUpdated += await writeLocationUsage(database.pool, rows);
        s.lastUsageWriteAt = Date.now();
      } catch (error) {
        s.usageFailures += 1;
        throw error;
      }
    },
  });

  let lastMaintenance = 0;
  const history = new PeriodicJob({
    name: 'node-history',
    intervalMs: HISTORY_WRITE_MS,
    backoff: { baseMs: 5_000, maxMs: 60_000 },
    log,
    run: async () => {
      const nodeId = options.nodeId();
      if (nodeId === undefined) return;
      store.enqueue(minutes.takeFinished(nodeId, Date.now()));
      await store.flush();
      if (Date.now() - lastMaintenance >= MAINTENANCE_MS) {
        lastMaintenance = Date.now();
        await store.maintain();
      }
    },
  });

  const report = () => ({
    nodeId: options.nodeId() ?? null,
    latest: latest ?? null,
    problems: sampler.problems(),
    ...s,
    history: store.stats(),
  });
  options.expose(report);
  health.addComponent('node', () => ({
    nodeId: options.nodeId() ?? null,
    lastSampleAt: latest?.ts ?? null,
    problems: sampler.problems(),
    bufferedMinutes: store.stats().bufferedMinutes,
  }));
  const value = (read: (h: HostSample) => number | null) => () => {
    const v = latest ? read(latest) : null;
    return v ?? Number.NaN;
  };
  telemetry.gauge(
    'swarm_edge_node_cpu_percent',
    'Busy share of all CPUs of this node, 0-100',
    value((h) => h.cpuPercent),
  );
  telemetry.gauge(
    'swarm_edge_node_load1',
    'Load average over 1 minute',
    value((h) => h.load1),
  );
  telemetry.gauge(
    'swarm_edge_node_load5',
    'Load average over 5 minutes',
    value((h) => h.load5),
  );
  telemetry.gauge(
    'swarm_edge_node_load15',
    'Load average over 15 minutes',
    value((h) => h.load15),
  );
  telemetry.gauge(
    'swarm_edge_node_memory_total_bytes',
    'Memory of this node',
    value((h) => h.memoryTotalBytes),
  );
  telemetry.gauge(
    'swarm_edge_node_memory_available_bytes',
    'Memory available for new work (MemAvailable)',
    value((h) => h.memoryAvailableBytes),
  );
  telemetry.gauge(
    'swarm_edge_node_swap_used_bytes',
    'Swap in use',
    value((h) => h.swapUsedBytes),
  );
  telemetry.counter(
    'swarm_edge_node_disk_read_bytes_total',
    'Bytes read from the whole physical disks',
    () => latest?.diskReadBytes ?? 0,
  );
  telemetry.counter(
    'swarm_edge_node_disk_written_bytes_total',
    'Bytes written to the whole physical disks',
    () => latest?.diskWrittenBytes ?? 0,
  );
  telemetry.counter(
    'swarm_edge_node_network_receive_bytes_total',
    "Bytes received on the host's own interfaces",
    () => latest?.netRxBytes ?? 0,
  );
  telemetry.counter(
    'swarm_edge_node_network_transmit_bytes_total',
    "Bytes sent on the host's own interfaces",
    () => latest?.netTxBytes ?? 0,
  );
  telemetry.labelledGauge('swarm_edge_node_filesystem_size_bytes', 'Size of a configured mount point', 'path', () =>
    Object.fromEntries((latest?.disks ?? []).map((d) => [d.path, d.totalBytes])),
  );
  telemetry.labelledGauge(
    'swarm_edge_node_filesystem_used_bytes',
    'Used space of a configured mount point',
    'path',
    () => Object.fromEntries((latest?.disks ?? []).map((d) => [d.path, d.usedBytes])),
  );
  telemetry.gauge(
    'swarm_edge_node_running_containers',
    'Running deployment containers on this node',
    () => options.running()?.containers ?? Number.NaN,
  );
  telemetry.gauge(
    'swarm_edge_node_running_deployments',
    'Deployments with a running container on this node',
    () => options.running()?.deployments ?? Number.NaN,
  );

  app.addHook('onReady', () => {
    sampling.start();
    usage.start();
    history.start();
    return Promise.resolve();
  });
  app.addHook('onClose', async () => {
    await Promise.all([sampling.stop(), usage.stop(), history.stop()]);
    // What is finished is written before exit, if the database is there.
    const nodeId = options.nodeId();
    if (nodeId !== undefined) store.enqueue(minutes.takeFinished(nodeId, Date.now()));
    await store.flush().catch(() => undefined);
    sampler.close();
  });
  done();
}
