/**
 * PostgreSQL through PgBouncer in transaction mode, as the platform runs it: DATABASE_URL goes
 * through the pooler (migrations included), DATABASE_LISTEN_URL straight to the server, because
 * a LISTEN made through the pooler lasts only as long as its transaction.
 */
import { mkdtempSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ROUTES_FILE, routeName } from '../../src/router/index.js';
import {
  missingTools,
  startPgBouncer,
  startPostgres,
  startSwarm,
  waitFor,
  type TestPgBouncer,
  type TestPostgres,
  type TestSwarm,
  listenOnLoopback,
} from '../harness/index.js';
import { buildRouterApp } from '../harness/router-app.js';

const skip = missingTools(['root', 'dockerd', 'docker', 'busybox', 'postgres', 'pgbouncer']);

describe.skipIf(skip)('PostgreSQL through a transaction-mode pooler', () => {
  let postgres: TestPostgres;
  let pooler: TestPgBouncer;
  let swarm: TestSwarm;
  let app: FastifyInstance;
  let baseUrl: string;
  const dynamicDir = mkdtempSync('/tmp/swarm-edge-traefik-');

  beforeAll(async () => {
    [postgres, swarm] = await Promise.all([startPostgres(), startSwarm()]);
    pooler = await startPgBouncer(postgres, 'swarm_edge_test');
    await swarm.cli(['network', 'create', '-d', 'overlay', '--attachable', 'edge-net']);
    app = await buildRouterApp(swarm, {
      databaseUrl: pooler.url,
      dynamicDir,
      // Far away: a row change must arrive by LISTEN, not by a resync.
      env: { DATABASE_LISTEN_URL: postgres.url, DISCOVERY_RESYNC_SECONDS: '3600' },
    });
    baseUrl = (await listenOnLoopback(app)).url;
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    await pooler?.destroy();
    await Promise.all([postgres?.destroy(), swarm?.destroy()]);
  });

  it('migrates through the pooler, listens on the direct URL, and publishes a row change at once', async () => {
    await waitFor(
      'postgres up through the pooler',
      async () =>
        ((await (await fetch(`${baseUrl}/health`)).json()) as { dependencies: { postgres: { status: string } } })
          .dependencies.postgres.status === 'up',
      30_000,
      100,
    );
    const migrated = await postgres.query<{ n: string }>('SELECT count(*) AS n FROM swarm_edge_migrations');
    expect(Number(migrated.rows[0]!.n)).toBeGreaterThan(0);
    // No advisory lock stays behind on a pooled server connection.
    expect((await postgres.query(`SELECT 1 FROM pg_locks WHERE locktype = 'advisory'`)).rowCount).toBe(0);

    await waitFor(
      'the LISTEN session on the server itself',
      async () =>
        (
          await postgres.query(
            `SELECT 1 FROM pg_stat_activity WHERE application_name = 'swarm-edge-listen' AND query LIKE 'LISTEN%'`,
          )
        ).rowCount === 1,
      30_000,
      100,
    );
    await swarm.docker.createService({
      Name: 'web-p',
      Labels: { 'cloud.obiente.deployment_id': 'dep-p' },
      TaskTemplate: { ContainerSpec: { Image: swarm.image }, Networks: [{ Target: 'edge-net' }] },
      Mode: { Replicated: { Replicas: 1 } },
    });
    await postgres.query(
      `INSERT INTO deployment_routing (id, deployment_id, domain, target_port) VALUES ('row-p', 'dep-p', 'p.example.com', 8080)`,
    );
    const name = routeName({ id: 'row-p', deploymentId: 'dep-p' });
    await waitFor(
      'the row in the routes file',
      async () => {
        const document = parse(await readFile(path.join(dynamicDir, ROUTES_FILE), 'utf8')) as {
          http?: { services?: Record<string, unknown> };
        };
        return document.http?.services?.[name] !== undefined;
      },
      30_000,
      100,
    );
  }, 90_000);
});
