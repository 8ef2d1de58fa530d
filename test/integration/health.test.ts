import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import {
  missingTools,
  startPostgres,
  startRedis,
  startSwarm,
  waitFor,
  type TestPostgres,
  type TestRedis,
  type TestSwarm,
} from '../harness/index.js';

const skip = missingTools(['root', 'dockerd', 'docker', 'busybox', 'postgres', 'redis-server']);

interface Health {
  status: string;
  dependencies: Record<string, { status: string; critical: boolean }>;
}

describe.skipIf(skip)('GET /health with real dependencies', () => {
  let postgres: TestPostgres;
  let redis: TestRedis;
  let swarm: TestSwarm;
  beforeAll(async () => {
    [postgres, redis, swarm] = await Promise.all([startPostgres(), startRedis(), startSwarm()]);
  });
  afterAll(async () => {
    await Promise.all([postgres?.destroy(), redis?.destroy(), swarm?.destroy()]);
  });

  async function appWith(env: Record<string, string>): Promise<FastifyInstance> {
    const app = await buildApp(loadConfig({ LOG_LEVEL: 'silent', ...env }), { logger: false });
    await app.ready();
    return app;
  }
  async function health(app: FastifyInstance): Promise<{ code: number; body: Health }> {
    const response = await app.inject({ method: 'GET', url: '/health' });
    return { code: response.statusCode, body: response.json<Health>() };
  }

  it('is 200 ok when PostgreSQL, Redis and Docker are all up', async () => {
    const app = await appWith({ DATABASE_URL: postgres.url, REDIS_URL: redis.url, DOCKER_HOST: swarm.dockerHost });
    try {
      await waitFor('all up', async () => (await health(app)).body.status === 'ok', 20_000);
      const { code, body } = await health(app);
      expect(code).toBe(200);
      expect(body.dependencies).toMatchObject({
        postgres: { status: 'up' },
        redis: { status: 'up' },
        docker: { status: 'up' },
      });
    } finally {
      await app.close();
    }
  });

  it('is 503 while Docker has never been reachable, naming it', async () => {
    const app = await appWith({ DATABASE_URL: postgres.url, DOCKER_HOST: 'unix:///nonexistent/docker.sock' });
    try {
      await waitFor('postgres up', async () => (await health(app)).body.dependencies.postgres?.status === 'up', 20_000);
      const { code, body } = await health(app);
      expect(code).toBe(503);
      expect(body.status).toBe('unavailable');
      expect(body.dependencies.docker).toMatchObject({ status: 'down', critical: true });
      expect(body.dependencies.redis).toMatchObject({ status: 'disabled' });
    } finally {
      await app.close();
    }
  });

  it('stays up and says degraded when Redis goes away, then recovers by itself', async () => {
    const app = await appWith({ DATABASE_URL: postgres.url, REDIS_URL: redis.url, DOCKER_HOST: swarm.dockerHost });
    try {
      await waitFor('all up', async () => (await health(app)).body.status === 'ok', 20_000);
      await redis.stop();
      await waitFor('redis down', async () => (await health(app)).body.dependencies.redis?.status === 'down', 20_000);
      const { code, body } = await health(app);
      expect(code).toBe(200);
      expect(body.status).toBe('degraded');
      await redis.start();
      await waitFor('ok again', async () => (await health(app)).body.status === 'ok', 30_000);
    } finally {
      await app.close();
    }
  });

  it('stays up and says degraded when PostgreSQL goes away after start-up', async () => {
    const app = await appWith({ DATABASE_URL: postgres.url, DOCKER_HOST: swarm.dockerHost });
    try {
      await waitFor('all up', async () => (await health(app)).body.status === 'ok', 20_000);
      await postgres.stop();
      await waitFor(
        'postgres down',
        async () => (await health(app)).body.dependencies.postgres?.status === 'down',
        30_000,
      );
      const { code, body } = await health(app);
      expect(code).toBe(200);
      expect(body.status).toBe('degraded');
      await postgres.start();
      await waitFor('ok again', async () => (await health(app)).body.status === 'ok', 30_000);
    } finally {
      await app.close();
    }
  });
});
