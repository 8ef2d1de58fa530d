/**
 * The traffic router role as a fastify plugin: swarm discovery, the routing table, the publishers
 * (file, HTTP provider, Redis) and deployment_locations, with their routes, health entries,
 * telemetry and start/stop hooks. It takes the shared parts as options and owns everything else.
 */
import { PostgresEndpoint } from '../db/index.js';
import type { FastifyInstance } from 'fastify';
import { LocationsWriter, SwarmWatcher } from '../discovery/index.js';
import { TaskServingListener } from '../discovery/task-serving-channel.js';
import { registerTraefikRoutes } from '../http/index.js';
import { Redis } from 'ioredis';
import { FeedBus, REDIS, subscriberOf } from '../redis/index.js';
import type { SharedParts } from '../shared-parts.js';
import { reservedFromList } from './host-policy.js';
import { RedisPublisher } from './redis-publisher.js';
import { ROUTES, RoutePublisher } from './route-publisher.js';
import { ROUTING_TABLE, RoutingTable } from './routing-table.js';
import { StartTrace } from './start-trace.js';
import { TraefikFileWriter } from './traefik-file-writer.js';

export function routerPlugin(app: FastifyInstance, shared: SharedParts): Promise<void> {
  const { config, database, docker, redis, health, telemetry } = shared;
  const log = app.log.child({ module: 'router' });
  health.register(ROUTING_TABLE, { enabled: true });
  health.register(ROUTES, { enabled: true });

  const watcher = new SwarmWatcher(
    { labelPrefix: config.labelPrefix, resyncMs: config.discoveryResyncMs },
    { docker, log: app.log.child({ module: 'discovery' }), health },
  );
  // Other nodes' tasks that start serving, announced by their metrics role.
  const announcements = redis
    ? new TaskServingListener({
        bus: new FeedBus(redis, subscriberOf(redis, 'swarm-edge-task-serving', log)),
        log: app.log.child({ module: 'discovery' }),
        onClaim: (claim, seenAt) => watcher.announce(claim, seenAt),
      })
    : undefined;
  const table = new RoutingTable(
    { resyncMs: config.discoveryResyncMs },
    {
      pool: database.pool,
      listenEndpoint:
        config.databaseListenUrl === undefined
          ? database.endpoint
          : new PostgresEndpoint(config.databaseListenUrl, app.log.child({ module: 'db-listen' })),
      isDatabaseReady: () => database.isReady(),
      onConnectionFailure: (e) => database.reportFailure(e),
      onListenRestored: () => database.recheck(),
      health,
      log,
    },
  );
  const locations = new LocationsWriter({
    pool: database.pool,
    isDatabaseReady: () => database.isReady(),
    log: app.log.child({ module: 'locations' }),
    intervalMs: config.discoveryResyncMs,
  });
  const file = new TraefikFileWriter(config.traefikDynamicDir);
  const redisPublisher =
    // Never a cluster here: Traefik's Redis provider cannot read one, and the config refuses it.
    redis instanceof Redis && config.traefik.redisRoot
      ? new RedisPublisher(redis, config.traefik.redisRoot, {
          log,
          onFailure: () => telemetry.router.publishFailed('redis'),
          onSynced: (error) => publisher.redisSynced(error),
        })
      : undefined;
  const publisher = new RoutePublisher(
    {
      labelPrefix: config.labelPrefix,
      entryPoints: config.traefik.entryPoints,
      defaultCertResolver: config.traefik.certResolver,
      network: config.traefik.network,
      fallbackUrl: config.traefik.fallbackUrl,
      hostPolicy: { ...reservedFromList(config.routing.reservedHosts), sharing: config.routing.hostSharing },
      middlewarePolicy: { forwardAuthAllowed: config.routing.forwardAuthAllowed },
      streamEntryPoints: { tcp: config.routing.tcpEntryPoints, udp: config.routing.udpEntryPoints },
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

  const starts = new StartTrace((stages) => telemetry.router.startPublished(stages));
  watcher.onStart((start) => starts.started(start));
  publisher.onPublished((snapshotAt, writtenAt) => starts.published(snapshotAt, writtenAt));
  watcher.onChange((topology, causedAt) => {
    publisher.changed(causedAt);
    locations.update(topology);
  });
  table.onChange((_rows, causedAt) => publisher.changed(causedAt));
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
  telemetry.gauge(
    'swarm_edge_docker_api_calls_per_second',
    'Docker API calls made by discovery per second, over the last 10 s',
    () => watcher.stats().apiCallsPerSecond.last10s,
  );
  health.addComponent('router', () => {
    const state = publisher.state();
    return {
      publishing: publisher.publishing(),
      publishedAt: state.publishedAt === undefined ? null : new Date(state.publishedAt).toISOString(),
      waitingFor: state.waitingFor ?? null,
      stale: state.stale,
      routes: state.statuses.length,
      rejected: state.counts.rejected,
      file: file.stats(),
      redis: redisPublisher?.stats() ?? null,
      routingTable: table.stats(),
      swarm: { ...watcher.stats(), announcements: announcements?.stats() ?? null },
      starts: starts.stats(),
    };
  });

  app.addHook('onReady', async () => {
    await file.init();
    watcher.start();
    announcements?.start();
    table.start();
    locations.start();
    redisPublisher?.start();
  });
  app.addHook('onClose', async () => {
    announcements?.stop();
    await Promise.all([watcher.stop(), table.stop(), locations.stop()]);
    await publisher.idle();
    await file.close();
    await redisPublisher?.stop();
  });
  return Promise.resolve();
}
