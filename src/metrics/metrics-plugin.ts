/**
 * The metrics streamer role as a fastify plugin: the collector, the live cache, the minute
 * aggregates and their store, and the websocket feed, with their routes, health, telemetry and
 * start/stop hooks. It takes the shared parts as options and owns everything else.
 */
import type { FastifyInstance } from 'fastify';
import { createPool, PostgresEndpoint } from '../db/index.js';
import { deploymentsOfContainers } from '../discovery/index.js';
import { createFeedAuthenticator } from '../feed/feed-auth.js';
import { MetricsFeed } from '../feed/metrics-feed.js';
import type { ContainerExitFrame } from '../feed/remote-message.js';
import { HistoryService } from '../history/history-service.js';
import {
  registerFeedRoutes,
  registerHistoryRoutes,
  registerObservabilityRoutes,
  registerUiRoutes,
} from '../http/index.js';
import type { Logger } from '../lib/logger.js';
import { PeriodicJob } from '../lib/periodic-job.js';
import { FeedBus, subscriberOf } from '../redis/index.js';
import type { SharedParts } from '../shared-parts.js';
import { AggregateStore } from './aggregate-store.js';
import { Aggregator } from './aggregator.js';
import { Collector } from './collector.js';
import { LiveCache } from './live-cache.js';
import { LocalContainers } from './local-containers.js';
import { metricsProblems } from './metrics-health.js';
import { registerMetricsTelemetry } from './metrics-telemetry.js';
import { ContainerExits } from './container-exits.js';
import { DockerEventStream } from '../discovery/docker-events.js';
import { TaskServingAnnouncer } from '../discovery/task-serving-channel.js';
import { createStatsSource } from './sources/select-source.js';
import { NodeHistory, nodePlugin } from '../nodes/index.js';
import { RequestHistory, trafficPlugin } from '../traffic/index.js';

const METRICS = 'metrics';

export async function metricsPlugin(app: FastifyInstance, shared: SharedParts): Promise<void> {
  const log = app.log.child({ module: 'metrics' });
  const { config, health } = shared;
  const pipeline = createPipeline(shared, log);
  const { source, containers, collector, cache, aggregator, store } = pipeline;
  const { feed, authenticate } = createFeed(shared, cache, app.log.child({ module: 'feed' }));

  let running: { containers: number; deployments: number } | undefined;
  collector.onSamples((samples) => {
    running = { containers: samples.length, deployments: new Set(samples.map((s) => s.deploymentId)).size };
    // Subscribers first: the rest is off their latency path. (A snapshot cannot miss these
    // samples: subscribing is another event, never between these calls.)
    feed.publishLocal(samples);
    cache.add(samples);
    aggregator.add(samples);
    void pipeline.writeFinished();
  });

  const exits = watchExits(shared, pipeline, log, (exit) => feed.publishExit(exit));
  // This node's tasks that start serving, announced to the routers (task-serving-channel.ts).
  const announcer = shared.redis
    ? new TaskServingAnnouncer({
        docker: shared.docker,
        redis: shared.redis,
        log: app.log.child({ module: 'discovery' }),
      })
    : undefined;

  health.register(METRICS, { enabled: true, optional: true });
  const evaluate = () => {
    const c = collector.stats();
    const problems = metricsProblems({
      now: Date.now(),
      intervalMs: config.metrics.intervalMs,
      lastCollectionAt: c.lastCollectionAt,
      lastCollectionError: c.lastError,
      storageBreaker: store.breakerState(),
      statsBreaker: source.breakerState?.(),
    });
    if (problems.length === 0) health.up(METRICS);
    else health.down(METRICS, problems.join('; '));
  };
  const upkeep = new PeriodicJob({
    name: 'metrics-flush',
    intervalMs: config.metrics.intervalMs,
    log,
    run: async () => {
      evaluate();
      await pipeline.writeFinished();
    },
  });
  const maintenance = new PeriodicJob({
    name: 'metrics-maintenance',
    intervalMs: 300_000,
    firstRunJitterMs: 5_000,
    backoff: { baseMs: 5_000, maxMs: 300_000 },
    log,
    run: () => store.maintain(),
  });

  let nodes: (() => unknown) | undefined;
  await app.register(nodePlugin, {
    shared,
    nodeId: () => containers.node,
    running: () => running,
    expose: (report) => (nodes = report),
    onSamples: (listener) => collector.onSamples(listener),
    healthOf: (id) => containers.healthOf(id),
    metricsPool: pipeline.metricsPool,
    onPrimaryMove: (listener) => pipeline.metricsEndpoint.onPrimaryMove(listener),
    storageKind: () => store.storageKind(),
    publishHost: (nodeId, host) => feed.publishHost(nodeId, host),
  });
  let traffic: (() => unknown) | undefined;
  if (config.traefikMetrics.urls.length > 0)
    await app.register(trafficPlugin, {
      shared,
      metricsPool: pipeline.metricsPool,
      storageKind: () => store.storageKind(),
      publish: (figures) => feed.publishRequests(figures),
      expose: (report) => (traffic = report),
    });

  const report = () => ({
    node: { source: source.name, intervalMs: config.metrics.intervalMs },
    collection: collector.stats(),
    source: source.stats(),
    containers: containers.stats(),
    storage: store.stats(),
    aggregator: aggregator.stats(),
    feed: feed.stats(),
    liveCache: cache.stats(),
    traffic: traffic?.() ?? null,
    host: nodes?.() ?? null,
    exits: { ...exits.counter.stats(), events: exits.stream.stats() },
    taskStarts: announcer?.stats() ?? null,
  });
  registerObservabilityRoutes(app, { report });
  await registerFeedRoutes(app, { feed, authenticate });
  registerHistoryRoutes(app, {
    history: new HistoryService({
      metricsPool: pipeline.metricsPool,
      storageKind: () => store.storageKind(),
      locations: shared.database,
    }),
    // Served on every instance: whichever instance scrapes Traefik, the minutes are in the database.
    requests: new RequestHistory({ metricsPool: pipeline.metricsPool, storageKind: () => store.storageKind() }),
    nodes: new NodeHistory({ metricsPool: pipeline.metricsPool, storageKind: () => store.storageKind() }),
    authenticate,
    retentionDays: config.metrics.retentionDays,
  });
  registerUiRoutes(app);
  health.addComponent(METRICS, () => {
    const r = report();
    return {
      source: r.node.source,
      lastCollectionAt: r.collection.lastCollectionAt ?? null,
      containers: r.collection.containersSampled,
      bufferedRows: r.storage.bufferedRows,
      storageBreaker: r.storage.breaker.state,
      rowsReplayed: r.storage.rowsReplayed,
      subscribers: r.feed.subscribers,
      // Its own database with several hosts: which is primary (the platform one's is postgresHosts).
      ...(pipeline.metricsEndpoint !== shared.database.endpoint && pipeline.metricsEndpoint.primaryOnly
        ? { databaseHosts: pipeline.metricsEndpoint.report() }
        : {}),
    };
  });
  shared.telemetry.labelledCounter(
    'swarm_edge_container_exits_total',
    "Deployment containers' exits on this node by reason: requested (a planned stop), oom, crashed (non-zero code), completed (code 0 without a stop asked); all but requested are restarts",
    'reason',
    () => exits.counter.stats().exits,
  );
  registerMetricsTelemetry(shared.telemetry, {
    collection: () => collector.stats(),
    storage: () => store.stats(),
    feed: () => feed.stats(),
    liveCache: () => cache.stats(),
    breakers: () => ({
      metrics_database: store.breakerState() === 'closed' ? 0 : 1,
      ...(source.breakerState ? { docker_stats: source.breakerState() === 'closed' ? 0 : 1 } : {}),
    }),
  });

  app.addHook('onReady', () => {
    collector.start();
    exits.stream.start();
    announcer?.start();
    upkeep.start();
    maintenance.start();
    feed.start();
    return Promise.resolve();
  });
  app.addHook('onClose', async () => {
    await collector.stop();
    exits.stream.stop();
    announcer?.stop();
    await Promise.all([upkeep.stop(), maintenance.stop()]);
    await feed.stop();
    await pipeline.close();
  });
}

/** From containers to stored minutes: source, collector, live cache, aggregator and store. */
function createPipeline(shared: SharedParts, log: Logger) {
  const { config, database, docker } = shared;
  const metrics = config.metrics;
  const ownPool = config.metricsDatabaseUrl !== undefined && config.metricsDatabaseUrl !== shared.databaseUrl;
  const metricsEndpoint = ownPool ? new PostgresEndpoint(config.metricsDatabaseUrl, log) : database.endpoint;
  const metricsPool = ownPool
    ? createPool({ connectionString: metricsEndpoint, applicationName: 'swarm-edge-metrics', max: 4 }, log)
    : database.pool;
  const source =
    shared.statsSource ??
    createStatsSource(metrics.source, {
      docker,
      cgroupRoot: metrics.cgroupRoot,
      procRoot: metrics.procRoot,
      dockerConcurrency: metrics.dockerConcurrency,
      timeoutMs: 10_000,
    });
  const containers = new LocalContainers(
    {
      labelPrefix: config.labelPrefix,
      procRoot: metrics.procRoot,
      needsInspect: source.name === 'cgroup',
      timeoutMs: 10_000,
    },
    {
      docker,
      log,
      // Swarm containers whose deployment is only on their service's labels: the router knows.
      resolveDeployments: async (ids) => (database.isReady() ? deploymentsOfContainers(database.pool, ids) : new Map()),
    },
  );
  const collector = new Collector({ intervalMs: metrics.intervalMs }, { containers, source, log });
  const cache = new LiveCache({
    windowMs: metrics.liveWindowMs,
    maxContainers: 50_000,
    maxBytes: metrics.liveMaxBytes,
  });
  // A window is written once the next tick after its end has had time to land.
  const aggregator = new Aggregator({ graceMs: metrics.intervalMs + 2_000 });
  const store = new AggregateStore(
    {
      bufferMaxRows: metrics.bufferMaxRows,
      batchRows: 5_000,
      retentionDays: metrics.retentionDays,
      rollupRetentionDays: metrics.rollupRetentionDays,
      statementTimeoutMs: 10_000,
    },
    { pool: metricsPool, log },
  );
  const writeFinished = () => {
    store.enqueue(aggregator.takeFinished(Date.now()));
    return store.flush();
  };
  /** What is finished is written before exit; the window in progress is not finished. */
  const close = async () => {
    await writeFinished().catch(() => undefined);
    if (store.stats().bufferedRows > 0)
      log.warn(
        { buffered: store.stats().bufferedRows },
        'exiting with metrics windows not written (database unreachable)',
      );
    if (ownPool) await metricsPool.end().catch(() => undefined);
  };
  metricsEndpoint.onPrimaryMove(() => store.replayRecent());
  return {
    source,
    containers,
    collector,
    cache,
    aggregator,
    store,
    metricsPool,
    metricsEndpoint,
    writeFinished,
    close,
  };
}

/**
 * Restarts: the exits of this node's deployment containers that were not asked for, from Docker's
 * container events, counted in the container's minute row (`exits`).
 */
function watchExits(
  shared: SharedParts,
  pipeline: ReturnType<typeof createPipeline>,
  log: Logger,
  publish: (exit: ContainerExitFrame) => void,
) {
  const { containers, aggregator } = pipeline;
  const counter = new ContainerExits(
    { labelPrefix: shared.config.labelPrefix },
    {
      refOf: (id) => containers.refOf(id),
      onExit: (exit) => {
        if (exit.reason === 'requested') return;
        log.info(
          {
            deploymentId: exit.deploymentId,
            containerId: exit.containerId.slice(0, 12),
            exitCode: exit.exitCode,
            reason: exit.reason,
          },
          'deployment container exited without a stop asked for (a restart)',
        );
        const nodeId = exit.ref?.nodeId ?? containers.node ?? 'unknown';
        aggregator.addExit({
          containerId: exit.containerId,
          deploymentId: exit.deploymentId,
          nodeId,
          serviceId: exit.ref?.serviceId ?? null,
          at: exit.at,
        });
        publish({
          deploymentId: exit.deploymentId,
          containerId: exit.containerId,
          nodeId,
          exitCode: exit.exitCode,
          reason: exit.reason,
          ts: exit.at,
        });
      },
    },
  );
  const stream = new DockerEventStream(
    { name: 'container exits', filters: { type: ['container'], event: ['kill', 'oom', 'die'] } },
    { docker: shared.docker, log, onEvent: (event) => counter.handle(event) },
  );
  return { counter, stream };
}

/** The websocket feed and its token check, fanned out through Redis when there is one. */
function createFeed(shared: SharedParts, cache: LiveCache, log: Logger) {
  const { config, redis } = shared;
  const feed = new MetricsFeed(
    {
      maxBufferedBytes: config.feed.maxBufferedBytes,
      slowGraceMs: config.feed.slowGraceMs,
      maxSubscriptions: config.feed.maxSubscriptions,
      heartbeatMs: config.feed.heartbeatMs,
      windowMs: config.metrics.liveWindowMs,
    },
    { cache, redis: redis ? new FeedBus(redis, subscriberOf(redis, 'swarm-edge-feed', log)) : undefined, log },
  );
  const authenticate = createFeedAuthenticator({
    mode: config.feed.auth,
    secret: config.feed.jwtSecret,
    jwksUrl: config.feed.jwksUrl,
    issuer: config.feed.issuer,
    audience: config.feed.audience,
    requireExpiry: config.feed.requireExpiry,
  });
  if (config.feed.auth === 'none')
    log.warn('FEED_AUTH=none: the websocket feed serves every deployment to anyone who connects');
  else if (!authenticate.configured)
    log.warn('the websocket feed refuses every client: set FEED_JWT_SECRET or FEED_JWKS_URL (or FEED_AUTH=none)');
  return { feed, authenticate };
}
