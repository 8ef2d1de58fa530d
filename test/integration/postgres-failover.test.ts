/**
 * PostgreSQL failover with real servers: a primary and a streaming standby (pg_basebackup), the
 * service given both hosts in libpq's form. The primary is killed and the standby promoted, as a
 * failover manager would. The router must publish a row change made after the promotion, and the
 * metrics store must write every finished window exactly once, those the dead primary took with it
 * (acknowledged, never replicated) included.
 */
import { mkdtempSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createPool, migrate, migrations, PostgresEndpoint } from '../../src/db/index.js';
import { AggregateStore } from '../../src/metrics/index.js';
import { windows } from '../fixtures/minute-windows.js';
import { ROUTES_FILE, routeName } from '../../src/router/index.js';
import {
  missingTools,
  startPostgres,
  startSwarm,
  waitFor,
  type TestPostgres,
  type TestStandby,
  type TestSwarm,
  listenOnLoopback,
} from '../harness/index.js';
import { buildRouterApp } from '../harness/router-app.js';

const skip = missingTools(['root', 'dockerd', 'docker', 'busybox', 'postgres']);
const log = pino({ level: 'silent' });

interface Health {
  dependencies: Record<string, { status: string; recoveries?: Array<{ seconds: number; cause?: string }> }>;
  components: { postgresHosts?: { primary: string | null; primaryMoves: number } };
}

describe.skipIf(skip)('PostgreSQL failover to a promoted standby', () => {
  let primary: TestPostgres;
  let standby: TestStandby;
  let swarm: TestSwarm;
  let app: FastifyInstance;
  let baseUrl: string;
  let pool: pg.Pool;
  let endpoint: PostgresEndpoint;
  const dynamicDir = mkdtempSync('/tmp/swarm-edge-traefik-');
  const file = path.join(dynamicDir, ROUTES_FILE);

  beforeAll(async () => {
    [primary, swarm] = await Promise.all([startPostgres(), startSwarm()]);
    standby = await primary.startStandby();
    await swarm.cli(['network', 'create', '-d', 'overlay', '--attachable', 'edge-net']);
    // The standby first: the service must find the primary, not take the first host that answers.
    const url = `postgres://postgres:test@127.0.0.1:${standby.port},127.0.0.1:${primary.port}/swarm_edge_test?target_session_attrs=read-write`;
    app = await buildRouterApp(swarm, {
      databaseUrl: url,
      dynamicDir,
      // Far away: a row change must arrive by LISTEN on the new primary, not by a resync.
      env: { DISCOVERY_RESYNC_SECONDS: '3600' },
    });
    baseUrl = (await listenOnLoopback(app)).url;
    await waitFor('postgres up', async () => (await health()).dependencies.postgres?.status === 'up', 30_000, 100);
    endpoint = new PostgresEndpoint(url, log);
    pool = createPool({ connectionString: endpoint, applicationName: 'test', statementTimeoutMs: 3_000 }, log);
    await migrate(pool, migrations);
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    await pool?.end().catch(() => undefined);
    await standby?.destroy();
    await Promise.all([primary?.destroy(), swarm?.destroy()]);
  });

  async function health(): Promise<Health> {
    return (await (await fetch(`${baseUrl}/health`)).json()) as Health;
  }
  async function routedServers(name: string): Promise<string[]> {
    const http = (
      parse(await readFile(file, 'utf8')) as {
        http?: { services?: Record<string, { loadBalancer: { servers: Array<{ url: string }> } }> };
      }
    ).http;
    return (
      http?.services?.[name]?.loadBalancer.servers.map((s) => s.url).filter((u) => u.startsWith('http://10.')) ?? []
    );
  }
  const insertRow = (server: TestPostgres, id: string, domain: string) =>
    server.query(
      `INSERT INTO deployment_routing (id, deployment_id, domain, target_port) VALUES ($1, 'dep-f', $2, 8080)`,
      [id, domain],
    );

  it('moves the pool and LISTEN to the promoted standby: a row made after the promotion is published, and no window is lost or written twice', async () => {
    await swarm.docker.createService({
      Name: 'web-f',
      Labels: { 'cloud.obiente.deployment_id': 'dep-f' },
      TaskTemplate: { ContainerSpec: { Image: swarm.image }, Networks: [{ Target: 'edge-net' }] },
      Mode: { Replicated: { Replicas: 1 } },
    });
    await insertRow(primary, 'row-before', 'before.example.com');
    const before = routeName({ id: 'row-before', deploymentId: 'dep-f' });
    await waitFor('route before the failover', async () => (await routedServers(before)).length === 1, 60_000, 100);
    expect((await health()).components.postgresHosts).toMatchObject({
      primary: `127.0.0.1:${primary.port}`,
      primaryMoves: 0,
    });

    const store = new AggregateStore(
      {
        bufferMaxRows: 10_000,
        batchRows: 5_000,
        retentionDays: 14,
        rollupRetentionDays: 365,
        statementTimeoutMs: 3_000,
      },
      { pool, log },
    );
    endpoint.onPrimaryMove(() => store.replayRecent());
    const { rows } = windows(Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3_600_000, 30, ['f']);
    expect(rows).toHaveLength(30);
    store.enqueue(rows.slice(0, 10));
    await store.flush();
    expect(store.stats()).toMatchObject({ rowsWritten: 10, bufferedRows: 0 });
    // Everything written so far has reached the standby before it is promoted.
    await waitFor(
      'the standby to replay the writes',
      async () =>
        Number((await standby.query<{ n: string }>('SELECT count(*) AS n FROM container_metrics')).rows[0]!.n) === 10,
      30_000,
      100,
    );

    // Replication cut: what the primary acknowledges from now on never reaches the standby, as
    // with asynchronous replication when the primary dies with its last commits unsent.
    await standby.query(`ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1 user=postgres'`);
    await standby.query('SELECT pg_reload_conf()');
    await waitFor(
      'the standby to stop receiving',
      async () => (await standby.query(`SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'`)).rowCount === 0,
      30_000,
      100,
    );
    store.enqueue(rows.slice(10, 15));
    await store.flush();
    expect(store.stats()).toMatchObject({ rowsWritten: 15, bufferedRows: 0 });

    await primary.kill();
    store.enqueue(rows.slice(15, 20));
    await store.flush();
    expect(store.stats().bufferedRows).toBe(5);
    await standby.promote();
    const promotedAt = Date.now();
    await insertRow(standby, 'row-after', 'after.example.com');
    const after = routeName({ id: 'row-after', deploymentId: 'dep-f' });
    await waitFor(
      'the row made after the promotion in the file',
      async () => (await routedServers(after)).length === 1,
      30_000,
      100,
    );
    const published = Date.now() - promotedAt;
    expect(await routedServers(before)).toHaveLength(1);

    store.enqueue(rows.slice(20));
    await waitFor(
      'the buffered windows written to the new primary',
      async () => {
        await store.flush();
        return store.stats().bufferedRows === 0;
      },
      60_000,
      250,
    );
    const stored = await standby.query<{ n: string; buckets: string }>(
      'SELECT count(*) AS n, count(DISTINCT bucket) AS buckets FROM container_metrics',
    );
    expect(stored.rows[0]).toEqual({ n: '30', buckets: '30' });
    // The 5 windows the primary took with it were written again from the store's recent writes.
    expect(store.stats()).toMatchObject({ droppedRows: 0, rowsReplayed: 15 });

    await waitFor(
      'postgres up again',
      async () => (await health()).dependencies.postgres?.status === 'up',
      30_000,
      100,
    );
    const report = await health();
    expect(report.components.postgresHosts).toMatchObject({ primary: `127.0.0.1:${standby.port}`, primaryMoves: 1 });
    const recoveries = report.dependencies.postgres!.recoveries ?? [];
    expect(recoveries.length).toBeGreaterThanOrEqual(1);
    expect(recoveries.at(-1)!.seconds).toBeLessThan(30);
    console.info(
      `row made after the promotion published in ${published} ms; postgres back after ${recoveries.at(-1)!.seconds} s`,
    );
  }, 180_000);
});
