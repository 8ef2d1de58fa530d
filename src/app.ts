/**
 * The composition root: the one place that builds every part of the service from the config and
 * wires them together. buildApp returns a fastify instance that is not listening yet, so tests
 * can inject requests, swap adapters, or listen on port 0.
 */
import type Docker from 'dockerode';
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Redis } from 'ioredis';
import type { Config } from './config.js';
import { Database, startEmbeddedPostgres, type EmbeddedPostgresHandle } from './db/index.js';
import { createDockerClient, createDockerProbe } from './discovery/index.js';
import { HealthRegistry } from './health/index.js';
import { registerErrorHandling, registerHealthRoutes } from './http/index.js';
import type { PeriodicJob } from './lib/periodic-job.js';
import { createRedis, REDIS } from './redis/index.js';

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

  registerErrorHandling(app);
  registerHealthRoutes(app, { health, startedAt });

  app.addHook('onReady', (done) => {
    database.start();
    for (const job of jobs) job.start();
    // Redis is optional: a failed first connect is retried by ioredis and reported in /health.
    redis?.connect().catch(() => undefined);
    done();
  });

  // One hook, explicit order: stop the loops, then close what they use, the database last.
  app.addHook('onClose', async () => {
    await Promise.all(jobs.map((job) => job.stop()));
    redis?.disconnect();
    await database.close();
    await embedded?.stop();
  });

  return app;
}
