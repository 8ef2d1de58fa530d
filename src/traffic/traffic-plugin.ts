/**
 * Request metrics as a part of the metrics role: built and registered by the metrics plugin when
 * TRAEFIK_METRICS_URLS is set. It owns the scraper (traffic-monitor.ts), its store, its periodic
 * jobs, its health component and its Prometheus series; the role hands it the feed to publish
 * to and the metrics database.
 */
import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import type { Logger } from '../lib/logger.js';
import { PeriodicJob } from '../lib/periodic-job.js';
import type { StorageKind } from '../metrics/storage-schema.js';
import type { SharedParts } from '../shared-parts.js';
import type { RequestFigures } from './request-figures.js';
import { ServiceDirectory } from './service-directory.js';
import { TrafficMonitor } from './traffic-monitor.js';
import { TrafficStore } from './traffic-store.js';

export const TRAEFIK_METRICS = 'traefik-metrics';

export interface TrafficPluginOptions {
  readonly shared: SharedParts;
  readonly metricsPool: Pick<pg.Pool, 'query' | 'connect'>;
  readonly storageKind: () => StorageKind | undefined;
  readonly publish: (figures: readonly RequestFigures[]) => void;
  /** Receives the part's report getter, for /metrics/observability. */
  readonly expose: (report: () => unknown) => void;
}

export function trafficPlugin(
  app: FastifyInstance,
  options: TrafficPluginOptions,
  done: (error?: Error) => void,
): void {
  const { shared } = options;
  const { config, health, telemetry } = shared;
  const traefik = config.traefikMetrics;
  const log: Logger = app.log.child({ module: 'traffic' });
  const monitor = new TrafficMonitor(
    {
      targets: traefik.urls,
      intervalMs: config.metrics.intervalMs,
      timeoutMs: traefik.timeoutMs,
      maxBytes: traefik.maxBytes,
    },
    {
      store: new TrafficStore(
        {
          retentionDays: config.metrics.retentionDays,
          rollupRetentionDays: config.metrics.rollupRetentionDays,
          statementTimeoutMs: 10_000,
        },
        { pool: options.metricsPool, kind: options.storageKind, log },
      ),
      directory: new ServiceDirectory({ keepRemovedMs: 15 * 60_000 }, { pool: shared.database.pool }),
      publish: options.publish,
      log,
    },
  );
  const store = monitor.store;

  health.register(TRAEFIK_METRICS, { enabled: true, optional: true });
  const evaluate = () => {
    const down = monitor.downTargets();
    if (down.length === 0) health.up(TRAEFIK_METRICS);
    else health.down(TRAEFIK_METRICS, down.map((t) => `${t.url}: ${t.lastError ?? 'down'}`).join('; '));
  };
  const scraping = new PeriodicJob({
    name: 'traefik-scrape',
    intervalMs: config.metrics.intervalMs,
    log,
    run: async () => {
      await monitor.tick();
      evaluate();
    },
  });
  const maintenance = new PeriodicJob({
    name: 'traffic-maintenance',
    intervalMs: 300_000,
    firstRunJitterMs: 5_000,
    backoff: { baseMs: 5_000, maxMs: 300_000 },
    log,
    run: () => store.maintain(),
  });

  options.expose(() => monitor.stats());
  health.addComponent(TRAEFIK_METRICS, () => {
    const s = monitor.stats();
    return {
      scraping: s.holdsLease,
      targets: s.targets.map((t) => ({ url: t.url, up: t.up, lastScrapeAt: t.lastScrapeAt ?? null })),
      pendingMinutes: s.targets.reduce((n, t) => n + t.pendingMinutes, 0),
    };
  });
  telemetry.labelledGauge(
    'swarm_edge_traefik_target_up',
    'Whether the last scrape of a Traefik target succeeded',
    'target',
    () => Object.fromEntries(monitor.stats().targets.map((t) => [t.url, t.up ? 1 : 0])),
  );
  telemetry.labelledCounter('swarm_edge_traefik_scrape_errors_total', 'Failed Traefik scrapes, by kind', 'kind', () => {
    const totals = { down: 0, malformed: 0, oversized: 0 };
    for (const t of monitor.stats().targets) {
      totals.down += t.failures;
      totals.malformed += t.malformed;
      totals.oversized += t.oversized;
    }
    return totals;
  });
  telemetry.gauge(
    'swarm_edge_traefik_unknown_services',
    'Traefik services seen that map to no deployment',
    () => monitor.stats().unknownServices,
  );
  telemetry.gauge('swarm_edge_traefik_scraper_lease', 'Whether this instance scrapes Traefik (holds the lease)', () =>
    monitor.stats().holdsLease ? 1 : 0,
  );
  telemetry.counter(
    'swarm_edge_traffic_minutes_written_total',
    'Minutes of request metrics written',
    () => monitor.stats().minutesWritten,
  );

  app.addHook('onReady', () => {
    scraping.start();
    maintenance.start();
    return Promise.resolve();
  });
  app.addHook('onClose', async () => {
    await Promise.all([scraping.stop(), maintenance.stop()]);
    await monitor
      .stop()
      .catch((error: unknown) => log.warn({ err: error }, 'could not write the last request metrics'));
  });
  done();
}
