/**
 * The history API against a real PostgreSQL (the plain path; its TimescaleDB SQL is unit-tested):
 * minute rows written by the real store, the hourly rollup its maintenance computes, the figures
 * read back over HTTP, and every refusal (400 naming the parameter, 401, 403).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { SignJWT } from 'jose';
import type pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, migrate, migrations } from '../../src/db/index.js';
import { createFeedAuthenticator } from '../../src/feed/feed-auth.js';
import { HistoryService } from '../../src/history/history-service.js';
import { RequestHistory } from '../../src/traffic/index.js';
import { NodeHistory } from '../../src/nodes/index.js';
import type { NodeMinuteRow } from '../../src/nodes/node-minutes.js';
import { NodeStore } from '../../src/nodes/node-store.js';
import { registerHistoryRoutes } from '../../src/http/index.js';
import { AggregateStore, type AggregateRow } from '../../src/metrics/index.js';
import { missingTools, startPostgres, type TestPostgres } from '../harness/index.js';

const skip = missingTools(['root', 'postgres']);
const log = pino({ level: 'silent' });
const SECRET = 'history-integration-secret-0123456789abcdef';
const MINUTE = 60_000;
const HOUR = 3_600_000;

const token = (deployments: string[], secret = SECRET, claims: Record<string, unknown> = {}) =>
  new SignJWT({ deployments, ...claims })
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime('10m')
    .sign(new TextEncoder().encode(secret));

/** Two containers of dep-h, every minute of the last `hours`: CPU 10 and 30 %, 1 MB and 3 MB, 600 B rx a minute each. */
function rows(start: number, minutes: number): AggregateRow[] {
  const out: AggregateRow[] = [];
  for (let m = 0; m < minutes; m++) {
    for (const [i, c] of ['a', 'b'].entries()) {
      out.push({
        bucket: start + m * MINUTE,
        containerId: c.repeat(64),
        deploymentId: 'dep-h',
        nodeId: `node-${c}`,
        serviceId: 'svc',
        cpuAvg: 10 + 20 * i,
        cpuMax: 15 + 20 * i,
        memoryAvg: (1 + 2 * i) * 1e6,
        memoryMax: (1 + 2 * i) * 1e6 + 5,
        netRxBytes: 600,
        netTxBytes: 60,
        blockReadBytes: 0,
        blockWriteBytes: 12,
        samples: 12,
        cpuThrottledPeriods: 0,
        cpuThrottledSeconds: 0,
        oomKills: 0,
        exits: 0,
      });
    }
  }
  return out;
}

describe.skipIf(skip)('history API on PostgreSQL', () => {
  let postgres: TestPostgres;
  let pool: pg.Pool;
  let app: FastifyInstance;
  let store: AggregateStore;
  const now = Date.now();
  const start = Math.floor(now / HOUR) * HOUR - 6 * HOUR;

  beforeAll(async () => {
    postgres = await startPostgres();
    pool = createPool({ connectionString: postgres.url, applicationName: 'test', statementTimeoutMs: 5_000 }, log);
    await migrate(pool, migrations);
    store = new AggregateStore(
      {
        bufferMaxRows: 100_000,
        batchRows: 5_000,
        retentionDays: 14,
        rollupRetentionDays: 365,
        statementTimeoutMs: 5_000,
      },
      { pool, log },
    );
    store.enqueue(rows(start, 6 * 60));
    await store.flush();
    await store.maintain(new Date(now));
    await pool.query(
      `INSERT INTO deployment_locations (deployment_id, node_id, node_hostname, container_id, status)
       VALUES ('dep-h', 'node-a', 'host-a', $1, 'running'), ('dep-h', 'node-b', 'host-b', $2, 'running'),
              ('dep-other', 'node-a', 'host-a', $3, 'running')`,
      ['a'.repeat(64), 'b'.repeat(64), 'c'.repeat(64)],
    );
    app = Fastify({ logger: false });
    registerHistoryRoutes(app, {
      requests: new RequestHistory({ metricsPool: pool, storageKind: () => store.storageKind() }),
      nodes: new NodeHistory({ metricsPool: pool, storageKind: () => store.storageKind() }),
      history: new HistoryService({
        metricsPool: pool,
        storageKind: () => store.storageKind(),
        locations: { pool, isReady: () => true },
      }),
      authenticate: createFeedAuthenticator({
        mode: 'jwt',
        secret: SECRET,
        jwksUrl: undefined,
        issuer: undefined,
        audience: undefined,
      }),
      retentionDays: 14,
    });
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
    await pool?.end().catch(() => undefined);
    await postgres?.destroy();
  });

  const get = async (url: string, deployments: string[] | null = ['dep-h']) =>
    app.inject({
      method: 'GET',
      url,
      headers: deployments ? { authorization: `Bearer ${await token(deployments)}` } : {},
    });

  it('answers minute totals, per-container lines and hourly rollups with the same figures', async () => {
    const from = start;
    const to = start + 6 * HOUR;
    const minutes = await get(`/api/v1/deployments/dep-h/metrics?from=${from}&to=${to}&step=1m`);
    expect(minutes.statusCode).toBe(200);
    const m = minutes.json<{ t: number[]; resolution: string; deployment: Record<string, number[]> }>();
    expect(m.resolution).toBe('minute');
    expect(m.t).toHaveLength(360);
    expect(new Set(m.deployment.cpuAvg)).toEqual(new Set([40]));
    expect(new Set(m.deployment.memoryAvg)).toEqual(new Set([4e6]));
    expect(new Set(m.deployment.containers)).toEqual(new Set([2]));
    expect(new Set(m.deployment.netRxBytes)).toEqual(new Set([1200]));

    const hours = await get(`/api/v1/deployments/dep-h/metrics?from=${new Date(from).toISOString()}&to=${to}&step=1h`);
    const h = hours.json<{ t: number[]; resolution: string; deployment: Record<string, number[]> }>();
    expect(h.resolution).toBe('hour');
    expect(h.t).toEqual(Array.from({ length: 6 }, (_, i) => from + i * HOUR));
    expect(new Set(h.deployment.cpuAvg)).toEqual(new Set([40]));
    expect(new Set(h.deployment.cpuMax)).toEqual(new Set([35]));
    expect(new Set(h.deployment.netRxBytes)).toEqual(new Set([72_000]));

    const perContainer = await get(`/api/v1/deployments/dep-h/metrics?from=${from}&to=${to}&step=30m&per=container`);
    const c = perContainer.json<{ containers: Array<{ containerId: string; nodeId: string; cpuAvg: number[] }> }>();
    expect(c.containers.map((x) => [x.nodeId, new Set(x.cpuAvg)])).toEqual([
      ['node-a', new Set([10])],
      ['node-b', new Set([30])],
    ]);
    // Before the rows: null buckets on the same axis, not missing ones.
    const early = await get(`/api/v1/deployments/dep-h/metrics?from=${from - HOUR}&to=${from + HOUR}&step=30m`);
    expect(early.json<{ deployment: { cpuAvg: Array<number | null> } }>().deployment.cpuAvg).toEqual([
      null,
      null,
      40,
      40,
    ]);
  });

  it('lists only the deployments the token grants, with their containers and nodes', async () => {
    const one = (await get('/api/v1/deployments')).json<{
      deployments: Array<{ deploymentId: string; nodes: string[]; containers: unknown[] }>;
    }>();
    expect(one.deployments.map((d) => [d.deploymentId, d.nodes, d.containers.length])).toEqual([
      ['dep-h', ['node-a', 'node-b'], 2],
    ]);
    const all = (await get('/api/v1/deployments', ['*'])).json<{ deployments: Array<{ deploymentId: string }> }>();
    expect(all.deployments.map((d) => d.deploymentId)).toEqual(['dep-h', 'dep-other']);
  });

  it('answers 401 without a valid token and 403 for a deployment the token does not list', async () => {
    expect((await get('/api/v1/deployments/dep-h/metrics', null)).statusCode).toBe(401);
    expect((await get('/api/v1/deployments', null)).statusCode).toBe(401);
    const forged = await app.inject({
      method: 'GET',
      url: '/api/v1/deployments/dep-h/metrics',
      headers: { authorization: `Bearer ${await token(['dep-h'], 'another-secret-0123456789abcdef-xyz')}` },
    });
    expect(forged.statusCode).toBe(401);
    expect(forged.headers['www-authenticate']).toBe('Bearer');
    const foreign = await get('/api/v1/deployments/dep-h/metrics', ['dep-other']);
    expect(foreign.statusCode).toBe(403);
  });

  it('answers 400 naming the parameter, and the database is untouched by what parameters hold', async () => {
    const cases: Array<[string, string]> = [
      [`/api/v1/deployments/dep-h/metrics?from=${now}&to=${now - MINUTE}`, 'from'],
      [`/api/v1/deployments/dep-h/metrics?from=${now - 30 * 86_400_000}&step=1m`, 'step'],
      [`/api/v1/deployments/dep-h/metrics?from=${now - 30 * 86_400_000}&per=container`, 'from'],
      [`/api/v1/deployments/dep-h/metrics?from=0`, 'from'],
      [`/api/v1/deployments/dep-h/metrics?to=1e400`, 'to'],
      [`/api/v1/deployments/dep-h/metrics?to=99999999999999999999999999`, 'to'],
      [`/api/v1/deployments/dep-h/metrics?step=-5m`, 'step'],
      [`/api/v1/deployments/dep-h/metrics?step=1m&step=5m`, 'step'],
      [`/api/v1/deployments/dep-h/metrics?per=container'%3B%20DROP%20TABLE%20container_metrics%3B--`, 'per'],
      [`/api/v1/deployments/dep-h/metrics?from=1%27%20OR%201%3D1`, 'from'],
      [`/api/v1/deployments/dep-h/metrics?__proto__=1`, '__proto__'],
      [`/api/v1/deployments/dep-h/metrics?constructor=1`, 'constructor'],
      [`/api/v1/deployments/dep%27%3B%20DROP%20TABLE%20container_metrics%3B--/metrics`, 'id'],
      [`/api/v1/deployments/dep%E2%80%8Bh/metrics`, 'id'],
    ];
    for (const [url, parameter] of cases) {
      const response = await get(url, ['*']);
      expect([url, response.statusCode, response.json<{ parameter: string }>().parameter]).toEqual([
        url,
        400,
        parameter,
      ]);
    }
    const { rows: left } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM container_metrics');
    expect(Number(left[0]!.n)).toBe(6 * 60 * 2);
  });

  it("serves a node's minutes and hourly rollup with the same sums, only to a token naming the node, after keeping them through an outage", async () => {
    let down = true;
    const refused = () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    const flaky = {
      query: ((...args: Parameters<pg.Pool['query']>) => (down ? refused() : pool.query(...args))) as pg.Pool['query'],
      connect: (() => (down ? refused() : pool.connect())) as pg.Pool['connect'],
    };
    const nodes = new NodeStore(
      { retentionDays: 14, rollupRetentionDays: 365, bufferMaxMinutes: 10_000 },
      { pool: flaky, kind: () => store.storageKind(), log },
    );
    const minute = (m: number, nodeId = 'node-a'): NodeMinuteRow => ({
      bucket: start + m * MINUTE,
      nodeId,
      cpuAvg: m % 2 === 0 ? 20 : 40,
      cpuMax: 90,
      load1Avg: 1.5,
      load1Max: 2,
      memoryTotal: 8e9,
      memoryUsedAvg: 4e9,
      memoryUsedMax: 5e9 + m,
      swapUsedMax: 0,
      diskUsed: 5e10,
      diskTotal: 1e11,
      diskReadBytes: 1_000 + m,
      diskWriteBytes: 2_000,
      netRxBytes: 3_000 + m,
      netTxBytes: 4_000,
      runningContainersMax: 3 + (m % 5),
      runningDeploymentsMax: 2,
      samples: 12,
    });
    nodes.enqueue(Array.from({ length: 6 * 60 }, (_, m) => minute(m)));
    nodes.enqueue([minute(0, 'node-b')]);
    await expect(nodes.flush()).rejects.toThrow(/ECONNREFUSED/);
    expect(nodes.stats()).toMatchObject({ bufferedMinutes: 361, writeFailures: 1, minutesWritten: 0 });
    down = false;
    await nodes.flush();
    nodes.enqueue([minute(0)]); // written before: a retry after an unknown outcome changes nothing
    await nodes.flush();
    await nodes.maintain(new Date(now));
    expect(nodes.stats()).toMatchObject({ bufferedMinutes: 0, minutesWritten: 361, minutesDuplicate: 1 });

    const getNode = async (url: string, claims: Record<string, unknown>) =>
      app.inject({
        method: 'GET',
        url,
        headers: { authorization: `Bearer ${await token(['dep-h'], SECRET, claims)}` },
      });
    const range = `from=${start}&to=${start + 6 * HOUR}`;
    const byMinute = await getNode(`/api/v1/nodes/node-a/metrics?${range}&step=1m`, { nodes: ['node-a'] });
    expect(byMinute.statusCode).toBe(200);
    type Answer = { nodeId: string; resolution: string; t: number[] } & Record<string, (number | null)[]>;
    const m = byMinute.json<Answer>();
    expect(m).toMatchObject({ nodeId: 'node-a', resolution: 'minute' });
    expect(m.t).toHaveLength(360);
    expect(m.cpuAvg!.slice(0, 2)).toEqual([20, 40]);
    expect(m.memoryUsedMax![7]).toBe(5e9 + 7);
    const sum = (values: (number | null)[]) => values.reduce<number>((a, b) => a + (b ?? 0), 0);
    const expectedRx = Array.from({ length: 360 }, (_, i) => 3_000 + i).reduce((a, b) => a + b, 0);
    expect(sum(m.netRxBytes!)).toBe(expectedRx);

    const byHour = await getNode(`/api/v1/nodes/node-a/metrics?${range}&step=1h`, { nodes: ['*'] });
    const h = byHour.json<Answer>();
    expect(h.resolution).toBe('hour');
    expect(h.t).toHaveLength(6);
    expect(sum(h.netRxBytes!)).toBe(expectedRx);
    expect(sum(h.diskReadBytes!)).toBe(sum(m.diskReadBytes!));
    expect(new Set(h.cpuAvg)).toEqual(new Set([30]));
    expect(new Set(h.runningContainersMax)).toEqual(new Set([7]));

    // Only the nodes the token names; `per` is not a node history's parameter; lookalike ids are other ids.
    expect((await getNode(`/api/v1/nodes/node-a/metrics?${range}`, {})).statusCode).toBe(403);
    expect((await getNode(`/api/v1/nodes/node-a/metrics?${range}`, { nodes: ['node-b'] })).statusCode).toBe(403);
    expect((await getNode(`/api/v1/nodes/NODE-A/metrics?${range}`, { nodes: ['node-a'] })).statusCode).toBe(403);
    const per = await getNode(`/api/v1/nodes/node-a/metrics?per=container`, { nodes: ['*'] });
    expect([per.statusCode, per.json<{ parameter: string }>().parameter]).toEqual([400, 'per']);
    const bad = await getNode(`/api/v1/nodes/node%E2%80%8Ba/metrics`, { nodes: ['*'] });
    expect([bad.statusCode, bad.json<{ parameter: string }>().parameter]).toEqual([400, 'id']);
    const unknown = await getNode(`/api/v1/nodes/node-z/metrics?${range}&step=1h`, { nodes: ['*'] });
    expect(unknown.json<Answer>().cpuAvg).toEqual([null, null, null, null, null, null]);
    expect((await app.inject({ method: 'GET', url: `/api/v1/nodes/node-a/metrics` })).statusCode).toBe(401);

    // The Grafana node dashboard's SQL, with Grafana's macros expanded as its PostgreSQL source does.
    const dashboard = JSON.parse(
      readFileSync(path.resolve(import.meta.dirname, '../../deploy/grafana/swarm-edge-nodes.json'), 'utf8'),
    ) as { panels: Array<{ title: string; targets: Array<{ rawSql: string }> }> };
    const expand = (sql: string, oneGroup: boolean) =>
      sql
        .replace(/\$__timeGroupAlias\(bucket, '1m'\)/g, oneGroup ? `0::float8 AS "time"` : `bucket AS "time"`)
        .replace(
          /\$__timeFilter\(bucket\)/g,
          `bucket BETWEEN to_timestamp(${start / 1000}) AND to_timestamp(${(start + 6 * HOUR) / 1000})`,
        )
        .replace(/\$node/g, `'node-a'`);
    const whole: Record<string, number> = {};
    for (const panel of dashboard.panels) {
      const { rows } = await pool.query<{ metric: string }>(expand(panel.targets[0]!.rawSql, false));
      expect(rows.length, panel.title).toBeGreaterThanOrEqual(360);
      for (const row of (await pool.query<{ metric: string; value: number }>(expand(panel.targets[0]!.rawSql, true)))
        .rows)
        whole[`${panel.title}: ${row.metric}`] = Number(row.value);
    }
    expect(whole).toMatchObject({
      'CPU busy: node-a': 30,
      'Memory used: node-a': 50,
      'Disk used: node-a': 50,
      'Running containers: node-a': 7,
    });
    expect(whole['Network received: node-a']).toBeCloseTo(expectedRx / 60, 6);
    expect(whole['Disk I/O: node-a written']).toBeCloseTo((360 * 2_000) / 60, 6);
  });
});
