/**
 * What the swarm benchmarks share: the harness's PostgreSQL and swarm, an overlay network
 * `edge-net`, and the router role on them (logging off), with its routes file in a new directory,
 * ready once the schema is migrated.
 */
import { mkdtempSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { ROUTES_FILE } from '../src/router/index.js';
import { startPostgres, startSwarm, waitFor, type TestPostgres, type TestSwarm } from '../test/harness/index.js';
import { buildRouterApp } from '../test/harness/router-app.js';

export interface RouterOnSwarm {
  readonly postgres: TestPostgres;
  readonly swarm: TestSwarm;
  readonly app: FastifyInstance;
  /** The routes file the router writes. */
  readonly file: string;
  readonly destroy: () => Promise<void>;
}

/**
 * `subnet`: the overlay's address range (the default /24 holds about 250 tasks). `internal`: no
 * egress, so tasks take no port on the host's docker_gwbridge (a Linux bridge holds 1,024 ports).
 */
export async function startRouterOnSwarm(
  name: string,
  options: { subnet?: string; internal?: boolean } = {},
): Promise<RouterOnSwarm> {
  const [postgres, swarm] = await Promise.all([startPostgres(), startSwarm()]);
  const dir = mkdtempSync(`/tmp/swarm-edge-bench-${name}-`);
  await swarm.cli([
    'network',
    'create',
    '-d',
    'overlay',
    ...(options.subnet ? ['--subnet', options.subnet] : []),
    ...(options.internal ? ['--internal'] : []),
    'edge-net',
  ]);
  const app = await buildRouterApp(swarm, { databaseUrl: postgres.url, dynamicDir: dir });
  await app.ready();
  await waitFor(
    'schema',
    async () => (await postgres.query(`SELECT to_regclass('deployment_routing') AS t`)).rows[0]?.t !== null,
    30_000,
  );
  return {
    postgres,
    swarm,
    app,
    file: path.join(dir, ROUTES_FILE),
    destroy: async () => {
      await app.close();
      await Promise.all([postgres.destroy(), swarm.destroy()]);
    },
  };
}
