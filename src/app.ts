/**
 * The composition root: the one place that builds every part of the service from the config and
 * wires them together. buildApp returns a fastify instance that is not listening yet, so tests
 * can inject requests, swap adapters, or listen on port 0.
 */
import type Docker from 'dockerode';
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Redis } from 'ioredis';
import { hasRole, type Config } from './config.js';
import { createPool, Database, POSTGRES, prepareEmbeddedPostgres, type EmbeddedPostgresHandle } from './db/index.js';
import { createDockerClient, createDockerProbe, LocationsWriter, SwarmWatcher } from './discovery/index.js';
import { HealthRegistry } from './health/index.js';
import { createFeedAuthenticator } from './feed/feed-auth.js';
import { MetricsFeed } from './feed/metrics-feed.js';
import {
  registerErrorHandling,
  registerFeedRoutes,
  registerHealthRoutes,
  registerMetricsRoutes,
  registerObservabilityRoutes,
  registerOpenApiRoute,
  registerTraefikRoutes,
  registerUiRoutes,
} from './http/index.js';
import { PeriodicJob } from './lib/periodic-job.js';
import { AggregateStore, Aggregator, Collector, createStatsSource, LiveCache, LocalContainers } from './metrics/index.js';
import { createTelemetry } from './telemetry/index.js';
import { createRedis, REDIS } from './redis/index.js';
import { RedisPublisher, reservedFromList, RoutePublisher, ROUTES, ROUTING_TABLE, RoutingTable, TraefikFileWriter } from './router/index.js';

export interface AppDeps {
  /** Docker client; default: one for config.dockerHost. */
  readonly docker?: Docker;
  /** fastify's logger option; tests pass false. Default: pino at config.logLevel. */
  readonly logger?: FastifyServerOptions['logger'];
}

export function loggerOptions(config: Pick<Config, 'logLevel'>): FastifyServerOptions['logger'] {
  return {
    level: config.logLevel,
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', '*.token', '*.password'],
      censor: '[redacted]',
    },
  };
}

export async function buildApp(config: Config, deps: AppDeps = {}): Promise<FastifyInstance> {
  const verbose = config.logLevel === 'debug' || config.logLevel === 'trace';
  const app = Fastify({
    logger: deps.logger ?? loggerOptions(config),
    // Per-request lines only at debug: scrapers and Traefik's poll would drown everything else.
    logController: new LogController({ disableRequestLogging: !verbose }),
    forceCloseConnections: 'idle',
    bodyLimit: 64 * 1024,
  });
  const startedAt = Date.now();
  const health = new HealthRegistry();
  health.onChange((name, status, detail) => {
    const log = app.log.child({ module: 'health' });
    if (status === 'up') log.info({ dependency: name }, `${name} is up`);
    else log.warn({ dependency: name, detail }, `${name} is down`);
  });

  let embedded: EmbeddedPostgresHandle | undefined;
  let databaseUrl = config.databaseUrl;
  if (databaseUrl === undefined) {
    // Prepared now, started in the background (onReady): the HTTP server listens at once.
    embedded = await prepareEmbeddedPostgres(
      { dataDir: config.dataDir, port: config.embeddedPostgresPort },
      app.log.child({ module: 'embedded-postgres' }),
    );
    databaseUrl = embedded.url;
  }
  const database = new Database({ url: databaseUrl }, { log: app.log.child({ module: 'db' }), health });

  const docker = deps.docker ?? createDockerClient(config.dockerHost);
  const jobs: PeriodicJob[] = [createDockerProbe({ docker, health, log: app.log.child({ module: 'docker' }) })];

  health.register(REDIS, { enabled: config.redisUrl !== undefined, optional: true });
  const redis: Redis | undefined =
    config.redisUrl === undefined ? undefined : createRedis(config.redisUrl, { health, log: app.log.child({ module: 'redis' }) });

  const telemetry = createTelemetry();
  registerErrorHandling(app);
  registerHealthRoutes(app, { health, startedAt });
  registerOpenApiRoute(app);
  registerMetricsRoutes(app, { telemetry });

  /** Start and stop steps of the roles, run in order on ready and in reverse on close. */
  const lifecycle: Array<{ start: () => Promise<void> | void; stop: () => Promise<void> | void }> = [];

  if (hasRole(config, 'router')) {
    const log = app.log.child({ module: 'router' });
    health.register(ROUTING_TABLE, { enabled: true });
    const watcher = new SwarmWatcher(
      { labelPrefix: config.labelPrefix, resyncMs: config.discoveryResyncMs },
      { docker, log: app.log.child({ module: 'discovery' }), health },
    );
    const table = new RoutingTable(
      { url: databaseUrl, resyncMs: config.discoveryResyncMs },
      { pool: database.pool, isDatabaseReady: () => database.isReady(), onConnectionFailure: (e) => database.reportFailure(e), health, log },
    );
    const locations = new LocationsWriter({
      pool: database.pool,
      isDatabaseReady: () => database.isReady(),
      log: app.log.child({ module: 'locations' }),
      intervalMs: config.discoveryResyncMs,
    });
    const file = new TraefikFileWriter(config.traefikDynamicDir);
    const redisPublisher = redis && config.traefik.redisRoot
      ? new RedisPublisher(redis, config.traefik.redisRoot, {
          log,
          onFailure: () => telemetry.router.publishFailed('redis'),
          onSynced: (error) => publisher.redisSynced(error),
        })
      : undefined;
    health.register(ROUTES, { enabled: true });
    const publisher = new RoutePublisher(
      {
        labelPrefix: config.labelPrefix,
        entryPoints: config.traefik.entryPoints,
        defaultCertResolver: config.traefik.certResolver,
        network: config.traefik.network,
        fallbackUrl: config.traefik.fallbackUrl,
        hostPolicy: { ...reservedFromList(config.routing.reservedHosts), sharing: config.routing.hostSharing },
      },
      {
        sources: {
          rows: () => ({ rows: table.current(), fresh: table.fresh() }),
          topology: () => ({ topology: watcher.topology(), synced: watcher.isSynced() }),
        },
        file,
        redis: redisPublisher,
        telemetry: telemetry.router,
        health,
        log,
      },
    );
    watcher.onChange((topology, causedAt) => {
      publisher.changed(causedAt);
      locations.update(topology);
    });
    table.onChange((_rows, causedAt) => publisher.changed(causedAt));
    // A database that comes back may hold changes made while it was away: reload at once.
    health.onChange((name, status) => {
      // Down: the reload fails at once and marks the rows stale; up: reload now, whatever the backoff.
      if (name === 'postgres') table.requestReload(performance.now(), { urgent: status === 'up' });
      // Redis may come back empty (restarted without persistence): rewrite the tree in full.
      if (name === REDIS && status === 'up') void redisPublisher?.forget();
    });
    registerTraefikRoutes(app, { state: () => publisher.state(), token: config.traefik.httpToken });
    telemetry.counter('swarm_edge_docker_api_calls_total', 'Docker API calls made by discovery', () =>
      Object.values(watcher.stats().apiCalls).reduce((a, b) => a + b, 0),
    );
    health.addComponent('router', () => {
      const state = publisher.state();
      return {
        publishing: publisher.publishing(),
        publishedAt: state.publishedAt === undefined ? null : new Date(state.publishedAt).toISOString(),
        waitingFor: state.waitingFor ?? null,
        stale: state.stale,
        file: file.stats(),
        redis: redisPublisher?.stats() ?? null,
        routes: state.statuses.length,
        rejected: state.counts.rejected,
        routingTable: table.stats(),
        swarm: watcher.stats(),
      };
    });
    lifecycle.push({
      start: async () => {
        await file.init();
        watcher.start();
        table.start();
        locations.start();
        redisPublisher?.start();
      },
      stop: async () => {
        await Promise.all([watcher.stop(), table.stop(), locations.stop()]);
        await publisher.idle();
        await file.close();
        await redisPublisher?.stop();
      },
    });
  }

  if (hasRole(config, 'metrics')) {
    const log = app.log.child({ module: 'metrics' });
    const metrics = config.metrics;
    const ownPool = config.metricsDatabaseUrl !== undefined && config.metricsDatabaseUrl !== databaseUrl;
    const metricsPool = ownPool
      ? createPool({ connectionString: config.metricsDatabaseUrl, applicationName: 'swarm-edge-metrics', max: 4 }, log)
      : database.pool;
    const source = createStatsSource(metrics.source, { docker, cgroupRoot: metrics.cgroupRoot, procRoot: metrics.procRoot, dockerConcurrency: metrics.dockerConcurrency, timeoutMs: 10_000 });
    const containers = new LocalContainers(
      { labelPrefix: config.labelPrefix, procRoot: metrics.procRoot, needsInspect: source.name === 'cgroup', timeoutMs: 10_000 },
      {
        docker,
        log,
        // Swarm containers whose deployment is only on their service's labels: the router knows.
        resolveDeployments: async (ids) => {
          if (!database.isReady()) return new Map();
          const { rows } = await database.pool.query<{ container_id: string; deployment_id: string }>(
            'SELECT container_id, deployment_id FROM deployment_locations WHERE container_id = ANY($1)', [ids]);
          return new Map(rows.map((r) => [r.container_id, r.deployment_id]));
        },
      },
    );
    const collector = new Collector({ intervalMs: metrics.intervalMs }, { containers, source, log });
    const cache = new LiveCache({ windowMs: metrics.liveWindowMs, maxContainers: 50_000, maxBytes: metrics.liveMaxBytes });
    // A window is written once the next tick after its end has had time to land.
    const aggregator = new Aggregator({ graceMs: metrics.intervalMs + 2_000 });
    const store = new AggregateStore(
      { bufferMaxRows: metrics.bufferMaxRows, batchRows: 5_000, retentionDays: metrics.retentionDays, rollupRetentionDays: metrics.rollupRetentionDays, statementTimeoutMs: 10_000 },
      { pool: metricsPool, log },
    );
    const feed = new MetricsFeed(
      { maxBufferedBytes: config.feed.maxBufferedBytes, slowGraceMs: config.feed.slowGraceMs, maxSubscriptions: config.feed.maxSubscriptions, heartbeatMs: config.feed.heartbeatMs, windowMs: metrics.liveWindowMs },
      { cache, redis: redis ? { pub: redis, sub: feedSubscriber(redis, log) } : undefined, log: app.log.child({ module: 'feed' }) },
    );
    const authenticate = createFeedAuthenticator({ mode: config.feed.auth, secret: config.feed.jwtSecret, jwksUrl: config.feed.jwksUrl, issuer: config.feed.issuer, audience: config.feed.audience, requireExpiry: config.feed.requireExpiry });
    if (config.feed.auth === 'none') log.warn('FEED_AUTH=none: the websocket feed serves every deployment to anyone who connects');
    else if (!authenticate.configured) log.warn('the websocket feed refuses every client: set FEED_JWT_SECRET or FEED_JWKS_URL (or FEED_AUTH=none)');

    const writeFinished = () => {
      store.enqueue(aggregator.takeFinished(Date.now()));
      return store.flush();
    };
    collector.onSamples((samples) => {
      // Subscribers first: the rest is off their latency path. (A snapshot cannot miss these
      // samples: subscribing is another event, never between these calls.)
      feed.publishLocal(samples);
      cache.add(samples);
      aggregator.add(samples);
      void writeFinished();
    });

    health.register('metrics', { enabled: true, optional: true });
    const evaluate = () => {
      const c = collector.stats();
      const problems: string[] = [];
      if (c.lastCollectionAt === undefined || Date.now() - c.lastCollectionAt > 3 * metrics.intervalMs) problems.push(`no collection for ${c.lastCollectionAt === undefined ? 'ever' : `${Math.round((Date.now() - c.lastCollectionAt) / 1000)} s`}${c.lastError ? ` (${c.lastError})` : ''}`);
      if (store.breakerState() !== 'closed') problems.push(`metrics database breaker ${store.breakerState()}`);
      if ((source.breakerState?.() ?? 'closed') !== 'closed') problems.push('docker stats breaker open');
      if (problems.length === 0) health.up('metrics');
      else health.down('metrics', problems.join('; '));
    };
    const upkeep = new PeriodicJob({
      name: 'metrics-flush',
      intervalMs: metrics.intervalMs,
      log,
      run: async () => {
        evaluate();
        await writeFinished();
      },
    });
    const maintenance = new PeriodicJob({ name: 'metrics-maintenance', intervalMs: 300_000, firstRunJitterMs: 5_000, backoff: { baseMs: 5_000, maxMs: 300_000 }, log, run: () => store.maintain() });

    const report = () => ({
      node: { source: source.name, intervalMs: metrics.intervalMs },
      collection: collector.stats(),
      source: source.stats(),
      containers: containers.stats(),
      storage: store.stats(),
      aggregator: aggregator.stats(),
      feed: feed.stats(),
      liveCache: cache.stats(),
    });
    registerObservabilityRoutes(app, { report });
    await registerFeedRoutes(app, { feed, authenticate });
    registerUiRoutes(app);
    health.addComponent('metrics', () => {
      const r = report();
      return { source: r.node.source, lastCollectionAt: r.collection.lastCollectionAt ?? null, containers: r.collection.containersSampled, bufferedRows: r.storage.bufferedRows, storageBreaker: r.storage.breaker.state, subscribers: r.feed.subscribers };
    });
    const t = telemetry;
    t.counter('swarm_edge_metrics_collections_total', 'Collection ticks run', () => collector.stats().ticks);
    t.counter('swarm_edge_metrics_collection_errors_total', 'Collection ticks that failed', () => collector.stats().errors);
    t.counter('swarm_edge_metrics_collection_overruns_total', 'Ticks skipped because the previous one was still running', () => collector.stats().overruns);
    t.gauge('swarm_edge_metrics_containers_sampled', 'Containers sampled by the last tick', () => collector.stats().containersSampled);
    t.gauge('swarm_edge_metrics_containers_failed', 'Containers that could not be sampled in the last tick', () => collector.stats().containersFailed);
    t.gauge('swarm_edge_metrics_collection_seconds', 'Wall time of the last collection tick', () => (collector.stats().lastDurationMs ?? 0) / 1000);
    t.gauge('swarm_edge_metrics_last_collection_timestamp_seconds', 'When the last collection finished', () => (collector.stats().lastCollectionAt ?? 0) / 1000);
    t.counter('swarm_edge_metrics_rows_written_total', 'Aggregate rows written', () => store.stats().rowsWritten);
    t.counter('swarm_edge_metrics_batches_written_total', 'Aggregate batches written', () => store.stats().batchesWritten);
    t.counter('swarm_edge_metrics_batches_failed_total', 'Aggregate batches that failed', () => store.stats().batchesFailed);
    t.counter('swarm_edge_metrics_rows_dropped_total', 'Aggregate rows dropped because the buffer was full', () => store.stats().droppedRows);
    t.gauge('swarm_edge_metrics_rows_buffered', 'Aggregate rows waiting to be written', () => store.stats().bufferedRows);
    t.gauge('swarm_edge_metrics_last_write_timestamp_seconds', 'When aggregates were last written', () => (store.stats().lastWriteAt ?? 0) / 1000);
    t.labelledGauge('swarm_edge_breaker_open', 'Circuit breakers: 1 when open or half-open', 'breaker', () => ({
      metrics_database: store.breakerState() === 'closed' ? 0 : 1,
      ...(source.breakerState ? { docker_stats: source.breakerState() === 'closed' ? 0 : 1 } : {}),
    }));
    t.gauge('swarm_edge_feed_subscribers', 'Websocket feed clients connected', () => feed.stats().subscribers);
    t.gauge('swarm_edge_feed_slow_subscribers', 'Feed clients currently over their buffer limit', () => feed.stats().slowSubscribers);
    t.counter('swarm_edge_feed_slow_disconnects_total', 'Feed clients closed as slow', () => feed.stats().slowDisconnects);
    t.counter('swarm_edge_feed_disconnects_total', 'Feed clients disconnected', () => feed.stats().disconnects);
    t.counter('swarm_edge_feed_conflated_samples_total', 'Samples replaced by a newer one before being sent', () => feed.stats().conflated);
    t.counter('swarm_edge_feed_samples_sent_total', 'Samples sent to feed clients', () => feed.stats().samplesSent);
    t.counter('swarm_edge_feed_auth_failures_total', 'Feed connections refused for their token', () => feed.stats().authFailures);
    t.counter('swarm_edge_feed_bad_messages_total', 'Malformed or unknown feed messages', () => feed.stats().badMessages);
    t.gauge('swarm_edge_live_cache_bytes', 'Estimated size of the live sample cache', () => cache.stats().bytes);
    t.gauge('swarm_edge_live_cache_containers', 'Containers in the live sample cache', () => cache.stats().containers);

    lifecycle.push({
      start: () => {
        collector.start();
        upkeep.start();
        maintenance.start();
        feed.start();
      },
      stop: async () => {
        await collector.stop();
        await Promise.all([upkeep.stop(), maintenance.stop()]);
        await feed.stop();
        // What is finished is written before exit; the window in progress is not finished.
        await writeFinished().catch(() => undefined);
        if (store.stats().bufferedRows > 0) log.warn({ buffered: store.stats().bufferedRows }, 'exiting with metrics windows not written (database unreachable)');
        if (ownPool) await metricsPool.end().catch(() => undefined);
      },
    });
  }

  app.addHook('onReady', async () => {
    if (embedded) {
      health.down(POSTGRES, `starting the embedded PostgreSQL (${embedded.dataDir}, port ${embedded.port})`);
      embedded.startInBackground({ onReady: () => database.start(), onFailure: (reason) => health.down(POSTGRES, reason) });
    } else database.start();
    for (const job of jobs) job.start();
    // Redis is optional: a failed first connect is retried by ioredis and reported in /health.
    redis?.connect().catch(() => undefined);
    for (const step of lifecycle) await step.start();
  });

  // One hook, explicit order: stop the loops, then close what they use, the database last.
  app.addHook('onClose', async () => {
    for (const step of [...lifecycle].reverse()) await step.stop();
    await Promise.all(jobs.map((job) => job.stop()));
    redis?.disconnect();
    await database.close();
    await embedded?.stop();
  });

  return app;
}

/** The feed's own Redis connection: a subscribed connection can run no other command. */
function feedSubscriber(redis: Redis, log: FastifyInstance['log']): Redis {
  const sub = redis.duplicate({ connectionName: 'swarm-edge-feed' });
  // The main connection reports Redis health; this one only needs its errors handled.
  sub.on('error', (error: Error) => log.debug({ err: error }, 'redis feed connection error'));
  return sub;
}
