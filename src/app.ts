/**
 * The composition root: the one place that builds every part of the service from the config and
 * wires them together. buildApp returns a fastify instance that is not listening yet, so tests
 * can inject requests, swap adapters, or listen on port 0.
 */
import type Docker from 'dockerode';
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Redis } from 'ioredis';
import { hasRole, type Config } from './config.js';
import { Database, startEmbeddedPostgres, type EmbeddedPostgresHandle } from './db/index.js';
import { createDockerClient, createDockerProbe, LocationsWriter, SwarmWatcher } from './discovery/index.js';
import { HealthRegistry } from './health/index.js';
import { registerErrorHandling, registerHealthRoutes, registerMetricsRoutes, registerTraefikRoutes } from './http/index.js';
import type { PeriodicJob } from './lib/periodic-job.js';
import { createTelemetry } from './metrics/index.js';
import { createRedis, REDIS } from './redis/index.js';
import { RedisPublisher, RoutePublisher, RoutingTable, TraefikFileWriter } from './router/index.js';

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
    embedded = await startEmbeddedPostgres(
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
  registerMetricsRoutes(app, { telemetry });

  /** Start and stop steps of the roles, run in order on ready and in reverse on close. */
  const lifecycle: Array<{ start: () => Promise<void> | void; stop: () => Promise<void> | void }> = [];

  if (hasRole(config, 'router')) {
    const log = app.log.child({ module: 'router' });
    const watcher = new SwarmWatcher(
      { labelPrefix: config.labelPrefix, resyncMs: config.discoveryResyncMs },
      { docker, log: app.log.child({ module: 'discovery' }), health },
    );
    const table = new RoutingTable(
      { url: databaseUrl, resyncMs: config.discoveryResyncMs },
      { pool: database.pool, isDatabaseReady: () => database.isReady(), onQueryFailure: (e) => database.reportFailure(e), log },
    );
    const locations = new LocationsWriter({
      pool: database.pool,
      isDatabaseReady: () => database.isReady(),
      log: app.log.child({ module: 'locations' }),
      intervalMs: config.discoveryResyncMs,
    });
    const file = new TraefikFileWriter(config.traefikDynamicDir);
    const redisPublisher = redis && config.traefik.redisRoot ? new RedisPublisher(redis, config.traefik.redisRoot, log) : undefined;
    const publisher = new RoutePublisher(
      {
        labelPrefix: config.labelPrefix,
        entryPoints: config.traefik.entryPoints,
        defaultCertResolver: config.traefik.certResolver,
        network: config.traefik.network,
        fallbackUrl: config.traefik.fallbackUrl,
      },
      {
        sources: {
          rows: () => ({ rows: table.current(), fresh: table.fresh() }),
          topology: () => ({ topology: watcher.topology(), synced: watcher.isSynced() }),
        },
        file,
        redis: redisPublisher,
        telemetry: telemetry.router,
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
      if (name === 'postgres' && status === 'up') table.requestReload();
    });
    registerTraefikRoutes(app, { state: () => publisher.state(), token: config.traefik.httpToken });
    telemetry.gauge('swarm_edge_docker_api_calls', 'Docker API calls made by discovery since start', () =>
      Object.values(watcher.stats().apiCalls).reduce((a, b) => a + b, 0),
    );
    health.addComponent('router', () => {
      const state = publisher.state();
      return {
        publishedAt: state.publishedAt === undefined ? null : new Date(state.publishedAt).toISOString(),
        waitingFor: state.waitingFor ?? null,
        routes: state.statuses.length,
        rejected: state.statuses.filter((s) => s.state === 'rejected').length,
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
      },
      stop: async () => {
        await Promise.all([watcher.stop(), table.stop(), locations.stop()]);
        await publisher.idle();
        await redisPublisher?.release().catch(() => undefined);
      },
    });
  }

  app.addHook('onReady', async () => {
    database.start();
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
