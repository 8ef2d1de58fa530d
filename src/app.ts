/**
 * The composition root: builds the parts every role shares (database, Docker, Redis, health,
 * telemetry) and registers the role plugins, which own everything else. buildApp returns a
 * fastify instance that is not listening yet, so tests can inject requests, swap parts, or
 * listen on port 0. The shared parts' hooks are added before the roles are registered: fastify
 * runs onClose hooks in reverse, so the roles stop first and the shared parts close last.
 */
import type Docker from 'dockerode';
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { hasRole, type Config } from './config.js';
import { Database, POSTGRES, prepareEmbeddedPostgres } from './db/index.js';
import { createDockerClient, createDockerProbe } from './discovery/index.js';
import { HealthRegistry } from './health/index.js';
import {
  registerErrorHandling,
  registerHealthRoutes,
  registerMetricsRoutes,
  registerOpenApiRoute,
} from './http/index.js';
import { metricsPlugin, type StatsSource } from './metrics/index.js';
import { createRedis, REDIS } from './redis/index.js';
import { routerPlugin } from './router/index.js';
import type { SharedParts } from './shared-parts.js';
import { createTelemetry } from './telemetry/index.js';

export interface AppDeps {
  /** Docker client; default: one for config.dockerHost. */
  readonly docker?: Docker;
  /** fastify's logger option; tests pass false. Default: pino at config.logLevel. */
  readonly logger?: FastifyServerOptions['logger'];
  /** The clock of the health registry; default: Date.now. */
  readonly clock?: () => number;
  /** The metrics role's stats source; default: the one STATS_SOURCE selects. */
  readonly statsSource?: StatsSource;
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
  const health = new HealthRegistry(deps.clock);
  const healthLog = app.log.child({ module: 'health' });
  health.onChange((name, status, detail, downMs) => {
    if (status !== 'up') healthLog.warn({ dependency: name, detail }, `${name} is down`);
    else if (downMs === undefined) healthLog.info({ dependency: name }, `${name} is up`);
    else
      healthLog.info({ dependency: name, recoverySeconds: downMs / 1000 }, `${name} is back after ${downMs / 1000} s`);
  });

  // With no DATABASE_URL: prepared now, started in the background, so the server listens at once.
  const embedded =
    config.databaseUrl === undefined
      ? await prepareEmbeddedPostgres(
          { dataDir: config.dataDir, port: config.embeddedPostgresPort },
          app.log.child({ module: 'embedded-postgres' }),
        )
      : undefined;
  const databaseUrl = config.databaseUrl ?? embedded!.url;
  const database = new Database({ url: databaseUrl }, { log: app.log.child({ module: 'db' }), health });
  const docker = deps.docker ?? createDockerClient(config.dockerHost);
  const dockerProbe = createDockerProbe({ docker, health, log: app.log.child({ module: 'docker' }) });
  health.register(REDIS, { enabled: config.redisUrl !== undefined, optional: true });
  const redis =
    config.redisUrl === undefined
      ? undefined
      : createRedis(config.redisUrl, { health, log: app.log.child({ module: 'redis' }) });
  const telemetry = createTelemetry();

  registerErrorHandling(app);
  registerHealthRoutes(app, { health, startedAt });
  registerOpenApiRoute(app);
  registerMetricsRoutes(app, { telemetry });

  app.addHook('onReady', () => {
    if (embedded) {
      health.down(POSTGRES, `starting the embedded PostgreSQL (${embedded.dataDir}, port ${embedded.port})`);
      embedded.startInBackground({
        onReady: () => database.start(),
        onFailure: (reason) => health.down(POSTGRES, reason),
      });
    } else database.start();
    dockerProbe.start();
    // Redis is optional: a failed first connect is retried by ioredis and reported in /health.
    void redis?.connect().catch(() => undefined);
    return Promise.resolve();
  });
  app.addHook('onClose', async () => {
    await dockerProbe.stop();
    redis?.disconnect();
    await database.close();
    await embedded?.stop();
  });

  const shared: SharedParts = {
    config,
    database,
    databaseUrl,
    docker,
    redis,
    health,
    telemetry,
    statsSource: deps.statsSource,
  };
  if (hasRole(config, 'router')) await app.register(routerPlugin, shared);
  if (hasRole(config, 'metrics')) await app.register(metricsPlugin, shared);
  return app;
}
