/**
 * The router role as the integration tests and swarm benchmarks run it: on the harness swarm and
 * its overlay network `edge-net`, logging off, writing its routes file to `dynamicDir`. `env`
 * adds to the settings or overrides them (tokens, Redis, resync, a pooler's URL, ...).
 */
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import type { TestSwarm } from './swarm.js';

export function buildRouterApp(
  swarm: TestSwarm,
  options: { databaseUrl: string; dynamicDir: string; env?: Record<string, string> },
): Promise<FastifyInstance> {
  return buildApp(
    loadConfig({
      LOG_LEVEL: 'silent',
      DATABASE_URL: options.databaseUrl,
      DOCKER_HOST: swarm.dockerHost,
      EDGE_ROLES: 'router',
      TRAEFIK_DYNAMIC_DIR: options.dynamicDir,
      TRAEFIK_NETWORK: 'edge-net',
      ...options.env,
    }),
    { logger: false },
  );
}
