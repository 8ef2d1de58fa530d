/**
 * Request metrics against a real PostgreSQL and loopback stand-ins that serve Traefik's exposition
 * exactly as Traefik writes it: the scraper's exactness (every driven request stored once, per
 * deployment and status class; stored quantiles equal to histogram_quantile on the same buckets),
 * two targets summed, resets, unknown and hostile services, bad and absent targets, handover
 * between instances; then the whole part through buildApp: feed frames, /health, observability.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createPool, migrate, migrations } from '../../src/db/index.js';
import { routeName } from '../../src/router/index.js';
import { planHistory } from '../../src/history/history-params.js';
import { histogramQuantile, RequestHistory, type RequestFigures } from '../../src/traffic/index.js';
import { ServiceDirectory } from '../../src/traffic/service-directory.js';
import { TrafficMonitor } from '../../src/traffic/traffic-monitor.js';
import { TrafficStore } from '../../src/traffic/traffic-store.js';
import {
  missingTools,
  serveExposition,
  startPostgres,
  TRAEFIK_BUCKETS,
  TraefikExposition,
  waitFor,
  type TestPostgres,
  listenOnLoopback,
} from '../harness/index.js';

const skip = missingTools(['root', 'postgres']);
const log = pino({ level: 'silent' });
const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'other'] as const;

type StandIn = Awaited<ReturnType<typeof serveExposition>>;
type Health = { status: string; dependencies: Record<string, { status: string }> };

/** Requests a test drove, per deployment: by status class, and cumulative latency buckets. */
class Expected {
  readonly byDeployment = new Map<string, { classes: number[]; buckets: number[]; requests: number }>();
  add(deploymentId: string, code: number, seconds: number, times: number): void {
    let e = this.byDeployment.get(deploymentId);
    if (!e) this.byDeployment.set(deploymentId, (e = { classes: [0, 0, 0, 0, 0, 0], buckets: [], requests: 0 }));
    e.classes[code >= 100 && code <= 599 ? Math.floor(code / 100) - 1 : 5]! += times;
    e.requests += times;
    [...TRAEFIK_BUCKETS, Infinity].forEach((le, i) => {
      e.buckets[i] = (e.buckets[i] ?? 0) + (seconds <= le ? times : 0);
    });
  }
}

describe.skipIf(skip)('request metrics from Traefik', () => {
  let postgres: TestPostgres;
  let pool: pg.Pool;
  const names = { a: '', b: '' };
  const standIns: StandIn[] = [];

  beforeAll(async () => {
    postgres = await startPostgres();
    pool = createPool({ connectionString: postgres.url, applicationName: 'test', statementTimeoutMs: 10_000 }, log);
    await migrate(pool, migrations);
    await pool.query(
      `INSERT INTO deployment_routing (id, deployment_id, domain, target_port) VALUES
       ('r-a', 'dep-a', 'a.example.com', 80), ('r-b', 'dep-b', 'b.example.com', 80)`,
    );
    names.a = routeName({ id: 'r-a', deploymentId: 'dep-a' });
    names.b = routeName({ id: 'r-b', deploymentId: 'dep-b' });
  }, 120_000);
  afterAll(async () => {
    await Promise.all(standIns.map((s) => s.close()));
    await pool?.end();
    await postgres?.stop();
  });

  async function standIn(): Promise<{ traefik: TraefikExposition; server: StandIn }> {
    const traefik = new TraefikExposition();
    const server = await serveExposition(traefik);
    standIns.push(server);
    return { traefik, server };
  }

  function monitor(
    targets: string[],
    clock: { now: number },
    published: RequestFigures[][] = [],
    lookup?: (hostname: string) => Promise<string[]>,
    database: Pick<pg.Pool, 'query' | 'connect'> = pool,
  ) {
    const store = new TrafficStore(
      { retentionDays: 14, rollupRetentionDays: 365, statementTimeoutMs: 10_000 },
      { pool: database, kind: () => 'postgres', log },
    );
    const directory = new ServiceDirectory({ keepRemovedMs: 900_000 }, { pool, clock: () => clock.now });
    return new TrafficMonitor(
      { targets, intervalMs: 5_000, timeoutMs: 3_000, maxBytes: 8 * 1024 * 1024 },
      {
        store,
        directory,
        publish: (f) => published.push([...f]),
        log,
        clock: () => clock.now,
        ...(lookup ? { lookup } : {}),
      },
    );
  }

  async function reset(): Promise<void> {
    await pool.query('DELETE FROM traffic_lease').catch(() => undefined);
    await pool.query('DELETE FROM traffic_checkpoints').catch(() => undefined);
    await pool.query('DELETE FROM request_metrics').catch(() => undefined);
    await pool.query('DELETE FROM request_latency').catch(() => undefined);
  }

  async function stored(deploymentId: string) {
    const { rows } = await pool.query<Record<string, string>>(
      `SELECT coalesce(sum(requests), 0) AS requests, ${CLASSES.map((c) => `coalesce(sum(status_${c}), 0) AS "${c}"`).join(', ')},
              coalesce(sum(duration_count), 0) AS duration_count
         FROM request_metrics WHERE deployment_id = $1`,
      [deploymentId],
    );
    const latency = await pool.query<{ le: number; count: string }>(
      `SELECT le, sum(count) AS count FROM request_latency WHERE deployment_id = $1 GROUP BY le ORDER BY le`,
      [deploymentId],
    );
    const row = rows[0]!;
    return {
      requests: Number(row.requests),
      classes: CLASSES.map((c) => Number(row[c])),
      durationCount: Number(row.duration_count),
      buckets: latency.rows.map((r) => ({ le: Number(r.le), count: Number(r.count) })),
    };
  }

  /** Drives random traffic into `traefik` for the services of dep-a and dep-b (and an unknown one). */
  function drive(traefik: TraefikExposition, expected: Expected, random: () => number): void {
    const codes = [200, 200, 200, 201, 304, 404, 499, 503, 101];
    for (let i = 0; i < 6; i++) {
      const [service, deploymentId] = [
        [`${names.a}@file`, 'dep-a'],
        [`${names.a}@http`, 'dep-a'],
        [`${names.b}@redis`, 'dep-b'],
        ['whoami@docker', undefined],
      ][Math.floor(random() * 4)]!;
      const code = codes[Math.floor(random() * codes.length)]!;
      const seconds = Math.round(random() * random() * 3000) / 1000;
      const times = 1 + Math.floor(random() * 40);
      traefik.observe({ service: service!, code, seconds, method: random() < 0.3 ? 'POST' : 'GET' }, times);
      if (deploymentId) expected.add(deploymentId, code, seconds, times);
    }
  }

  function rng(seed: number): () => number {
    let s = seed;
    return () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  }

  async function expectStored(expected: Expected): Promise<void> {
    for (const [deploymentId, e] of expected.byDeployment) {
      const s = await stored(deploymentId);
      expect(s.requests, deploymentId).toBe(e.requests);
      expect(s.classes, deploymentId).toEqual(e.classes);
      expect(s.durationCount, deploymentId).toBe(e.requests);
      const want = [...TRAEFIK_BUCKETS, Infinity].map((le, i) => ({ le, count: e.buckets[i]! }));
      expect(s.buckets).toEqual(want);
      for (const q of [0.5, 0.95, 0.99])
        expect(histogramQuantile(q, s.buckets), `q${q}`).toBe(histogramQuantile(q, want));
    }
  }

  it('stores N driven requests over three minutes as exactly N per deployment and status class, summed over two targets', async () => {
    await reset();
    const one = await standIn();
    const two = await standIn();
    // The four minutes lie inside the last whole hour (its minutes 10 to 14), so the hourly step below
    // has them in one bucket whatever the time of day the test runs at.
    const clock = { now: Math.floor(Date.now() / 3_600_000) * 3_600_000 - 50 * 60_000 + 1_000 };
    const published: RequestFigures[][] = [];
    const m = monitor([one.server.url, two.server.url], clock, published);
    const expected = new Expected();
    const random = rng(7);
    one.traefik.observe({ service: `${names.a}@file` }, 1_000_000); // before the baseline: never counted
    await m.tick();
    for (let t = 0; t < 36; t++) {
      drive(one.traefik, expected, random);
      drive(two.traefik, expected, random);
      clock.now += 5_000;
      await m.tick();
    }
    clock.now += 60_000;
    await m.tick();
    await expectStored(expected);
    const live = published.flat().filter((f) => f.deploymentId === 'dep-a');
    expect(live.reduce((n, f) => n + f.requests, 0)).toBe(expected.byDeployment.get('dep-a')!.requests);
    const stats = m.stats();
    expect(stats.unknownServiceNames).toContain('whoami@docker');
    expect(stats.unknownRequests).toBeGreaterThan(0);
    const minutes = await pool.query<{ n: string }>(`SELECT count(DISTINCT bucket) AS n FROM request_metrics`);
    expect(Number(minutes.rows[0]!.n)).toBeGreaterThanOrEqual(3);

    // The Grafana dashboard's SQL, with Grafana's macros expanded as its PostgreSQL source does.
    const dashboard = JSON.parse(
      readFileSync(path.resolve(import.meta.dirname, '../../deploy/grafana/swarm-edge-requests.json'), 'utf8'),
    ) as { panels: Array<{ title: string; targets: Array<{ rawSql: string }> }> };
    const expand = (sql: string, oneGroup: boolean) =>
      sql
        .replace(/\$__timeGroupAlias\(bucket, '(\d+)m'\)/g, (_m, minutes: string) =>
          oneGroup
            ? `0::float8 AS "time"`
            : `floor(extract(epoch from bucket) / ${Number(minutes) * 60}) * ${Number(minutes) * 60} AS "time"`,
        )
        .replace(/\$__timeFilter\(bucket\)/g, `bucket BETWEEN to_timestamp(0) AND now() + interval '1 day'`)
        .replace(/\$deployment/g, `'dep-a', 'dep-b'`);
    for (const panel of dashboard.panels) {
      const { rows } = await pool.query<{ time: number; metric: string; value: number | null }>(
        expand(panel.targets[0]!.rawSql, false),
      );
      expect(rows.length, panel.title).toBeGreaterThan(0);
      const whole = (await pool.query<{ metric: string; value: number }>(expand(panel.targets[0]!.rawSql, true))).rows;
      const a = whole.find((r) => r.metric === 'dep-a')!;
      const e = expected.byDeployment.get('dep-a')!;
      const want = [...TRAEFIK_BUCKETS, Infinity].map((le, i) => ({ le, count: e.buckets[i]! }));
      if (panel.title === 'Requests per second') expect(Number(a.value) * 60).toBeCloseTo(e.requests, 6);
      if (panel.title === 'Latency p95') expect(Number(a.value)).toBeCloseTo(histogramQuantile(0.95, want)! * 1000, 6);
      if (panel.title === '5xx share') expect(Number(a.value)).toBeCloseTo((100 * e.classes[4]!) / e.requests, 6);
    }

    // The history API: from minutes and from the hourly rollup, the same totals and quantiles.
    const history = new RequestHistory({ metricsPool: pool, storageKind: () => 'postgres' });
    await m.store.maintain(new Date(clock.now));
    const e = expected.byDeployment.get('dep-a')!;
    const want = [...TRAEFIK_BUCKETS, Infinity].map((le, i) => ({ le, count: e.buckets[i]! }));
    const hour = Math.floor(clock.now / 3_600_000) * 3_600_000;
    for (const step of ['1m', '1h']) {
      const from = step === '1h' ? hour - 3_600_000 : clock.now - 20 * 60_000;
      const plan = planHistory(
        'dep-a',
        { from: String(from), to: String(hour + 3_600_000), step },
        {
          retentionDays: 14,
          now: Date.now(),
        },
      );
      const answer = (await history.query(plan))!;
      expect(answer.resolution).toBe(step === '1h' ? 'hour' : 'minute');
      expect(
        answer.requests.reduce((a, b) => a + b, 0),
        step,
      ).toBe(e.requests);
      expect(
        answer.status['5xx'].reduce((a, b) => a + b, 0),
        step,
      ).toBe(e.classes[4]);
      if (step === '1h') {
        const i = answer.requests.findIndex((n) => n > 0);
        expect(answer.requests[i]).toBe(e.requests);
        expect(answer.latencyMs.p95[i]).toBeCloseTo(histogramQuantile(0.95, want)! * 1000, 3);
      }
    }
  });

  it('loses nothing to a restarted Traefik, a target down and back, or malformed and oversized expositions, and ignores hostile service names', async () => {
    await reset();
    const one = await standIn();
    const two = await standIn();
    const clock = { now: Math.floor(Date.now() / 60_000) * 60_000 - 30 * 60_000 + 1_000 };
    const m = monitor([one.server.url, two.server.url], clock);
    const expected = new Expected();
    const random = rng(11);
    await m.tick();
    const hostile = `evil"} 9999\ntraefik_service_requests_total{code="200",service="${names.a}@file"} 1`;
    const lookalikes = [
      `${names.a.toUpperCase()}@file`,
      `${names.a}@file.`,
      `${names.a}\u200b@file`,
      `${names.a}@FILE`,
      'dep-a',
      'dep-a@file',
    ];
    const modes = ['ok', 'error', 'ok', 'malformed', 'ok', 'oversized', 'ok', 'restart', 'ok'] as const;
    for (let t = 0; t < 27; t++) {
      const mode = modes[Math.floor(t / 3)]!;
      if (mode === 'restart' && t % 3 === 0) two.traefik.restart(); // right after a scrape: nothing in between
      two.server.mode = mode === 'restart' ? 'ok' : mode;
      drive(one.traefik, expected, random);
      drive(two.traefik, expected, random);
      two.traefik.observe({ service: hostile }, 5);
      for (const name of lookalikes) two.traefik.observe({ service: name }, 1);
      clock.now += 5_000;
      await m.tick();
      if (mode === 'error') expect(m.downTargets().map((d) => d.url)).toEqual([two.server.url]);
    }
    two.server.mode = 'ok';
    clock.now += 60_000;
    await m.tick();
    expect(m.downTargets()).toEqual([]);
    await expectStored(expected);
    const target = m.stats().targets.find((t) => t.url === two.server.url)!;
    expect(target.failures).toBeGreaterThan(0);
    expect(target.malformed).toBeGreaterThan(0);
    expect(target.oversized).toBeGreaterThan(0);
    expect(m.stats().unknownServiceNames).toEqual(expect.arrayContaining([hostile, ...lookalikes]));
  });

  it('counts each minute once across instances: a crashed scraper handed over, and two scraping at once', async () => {
    await reset();
    const one = await standIn();
    const clock = { now: Math.floor(Date.now() / 60_000) * 60_000 - 50 * 60_000 + 1_000 };
    const expected = new Expected();
    const random = rng(23);
    const a = monitor([one.server.url], clock);
    await a.tick();
    for (let t = 0; t < 20; t++) {
      drive(one.traefik, expected, random);
      clock.now += 5_000;
      await a.tick();
    }
    // `a` dies mid-minute with an unwritten minute; its lease expires; `b` takes over.
    drive(one.traefik, expected, random);
    await pool.query('DELETE FROM traffic_lease');
    const b = monitor([one.server.url], clock);
    for (let t = 0; t < 20; t++) {
      clock.now += 5_000;
      await b.tick();
      drive(one.traefik, expected, random);
    }
    // Split brain: `c` and `b` both believe they hold the lease, and both write.
    const c = monitor([one.server.url], clock);
    for (let t = 0; t < 30; t++) {
      clock.now += 2_500;
      await pool.query('DELETE FROM traffic_lease');
      await (t % 2 === 0 ? c : b).tick();
      drive(one.traefik, expected, random);
    }
    // `c` stops for good; `b` goes on, closes its minutes and writes them (re-measuring if `c` wrote last).
    for (let t = 0; t < 3; t++) {
      clock.now += 60_000;
      await pool.query('DELETE FROM traffic_lease');
      await b.tick();
    }
    expect(b.stats().rebases + c.stats().rebases).toBeGreaterThan(0);
    await expectStored(expected);
  });

  it('keeps scraping while the database is away, and writes every minute once it is back', async () => {
    await reset();
    const one = await standIn();
    const clock = { now: Math.floor(Date.now() / 60_000) * 60_000 - 90 * 60_000 + 1_000 };
    let down = false;
    const refused = () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    const flaky = {
      query: ((...args: Parameters<pg.Pool['query']>) => (down ? refused() : pool.query(...args))) as pg.Pool['query'],
      connect: (() => (down ? refused() : pool.connect())) as pg.Pool['connect'],
    };
    const m = monitor([one.server.url], clock, [], undefined, flaky);
    const expected = new Expected();
    const random = rng(31);
    await m.tick();
    for (let t = 0; t < 60; t++) {
      down = t >= 10 && t < 50; // the database is away for over three minutes
      drive(one.traefik, expected, random);
      clock.now += 5_000;
      await m.tick();
      if (t === 45) {
        expect(m.stats().holdsLease).toBe(true);
        expect(m.stats().writeFailures).toBeGreaterThan(0);
        expect(m.stats().targets[0]!.pendingMinutes).toBeGreaterThanOrEqual(2);
      }
    }
    clock.now += 60_000;
    await m.tick();
    expect(m.stats().targets[0]!.pendingMinutes).toBe(0);
    await expectStored(expected);
  });

  it('scrapes every address of a dns+ target, and writes the last minute of one that went away before dropping it', async () => {
    await reset();
    const one = await standIn();
    const port = new URL(one.server.url).port;
    // A second Traefik on another loopback address, same port: what tasks.<service> resolves to.
    const second = new TraefikExposition();
    standIns.push(await serveExposition(second, { host: '127.0.0.2', port: Number(port) }));
    const clock = { now: Math.floor(Date.now() / 60_000) * 60_000 - 70 * 60_000 + 1_000 };
    let addresses = ['127.0.0.1', '127.0.0.2'];
    const m = monitor([`dns+http://traefik.test:${port}/metrics`], clock, [], (hostname) =>
      hostname === 'traefik.test' ? Promise.resolve(addresses) : Promise.reject(new Error('NXDOMAIN')),
    );
    const expected = new Expected();
    await m.tick();
    expect(
      m
        .stats()
        .targets.map((t) => t.url)
        .sort(),
    ).toEqual([`http://127.0.0.1:${port}/metrics`, `http://127.0.0.2:${port}/metrics`]);
    for (let t = 0; t < 4; t++) {
      drive(one.traefik, expected, rng(5 + t));
      drive(second, expected, rng(50 + t));
      clock.now += 5_000;
      await m.tick();
    }
    addresses = ['127.0.0.1'];
    for (let t = 0; t < 20; t++) {
      clock.now += 5_000;
      await m.tick();
    }
    expect(m.stats().targets.map((t) => t.url)).toEqual([`http://127.0.0.1:${port}/metrics`]);
    await expectStored(expected);
  });

  describe('through buildApp', () => {
    let app: FastifyInstance;
    let traefik: TraefikExposition;
    let server: StandIn;
    let base: string;

    beforeAll(async () => {
      ({ traefik, server } = await standIn());
      app = await buildApp(
        loadConfig({
          LOG_LEVEL: 'silent',
          DATABASE_URL: postgres.url,
          DOCKER_HOST: 'unix:///nonexistent/docker.sock',
          EDGE_ROLES: 'metrics',
          FEED_AUTH: 'none',
          METRICS_INTERVAL_SECONDS: '1',
          TRAEFIK_METRICS_URLS: server.url,
        }),
        { logger: false },
      );
      base = (await listenOnLoopback(app)).address;
    }, 60_000);
    afterAll(async () => {
      await app?.close();
    });

    it('sends requests frames to feed subscribers, and reports targets in /health, observability and /metrics', async () => {
      await reset();
      const socket = new WebSocket(`ws://${base}/ws/metrics`);
      const frames: Array<Record<string, unknown>> = [];
      socket.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString()) as Record<string, unknown>));
      await new Promise((resolve) => socket.once('open', resolve));
      socket.send(JSON.stringify({ type: 'subscribe', deploymentId: 'dep-a' }));
      const timer = setInterval(
        () => traefik.observe({ service: `${names.a}@file`, code: 500, seconds: 0.04 }, 3),
        200,
      );
      try {
        await waitFor(
          'a requests frame',
          () => frames.some((f) => f.type === 'requests' && (f.requests as number) > 0),
          20_000,
        );
      } finally {
        clearInterval(timer);
      }
      const frame = frames.find((f) => f.type === 'requests' && (f.requests as number) > 0)!;
      expect(frame).toMatchObject({ deploymentId: 'dep-a', status: { '5xx': frame.requests } });
      expect((frame.latencyMs as { p50: number }).p50).toBeGreaterThan(25);
      expect((frame.latencyMs as { p50: number }).p50).toBeLessThanOrEqual(50);
      socket.close();

      const health = (await (await fetch(`http://${base}/health`)).json()) as Health;
      expect(health.dependencies['traefik-metrics']).toMatchObject({ status: 'up' });
      const observability = (await (await fetch(`http://${base}/metrics/observability`)).json()) as {
        traffic: { holdsLease: boolean; targets: unknown[] };
      };
      expect(observability.traffic.holdsLease).toBe(true);
      expect(observability.traffic.targets[0]).toMatchObject({ url: server.url, up: true });
      const metrics = await (await fetch(`http://${base}/metrics`)).text();
      expect(metrics).toContain(`swarm_edge_traefik_target_up{target="${server.url}"} 1`);

      server.mode = 'error';
      await waitFor(
        'traefik-metrics down',
        async () => {
          const h = (await (await fetch(`http://${base}/health`)).json()) as Health;
          return h.dependencies['traefik-metrics']?.status === 'down';
        },
        20_000,
      );
      server.mode = 'ok';
      await waitFor(
        'traefik-metrics up again',
        async () => {
          const h = (await (await fetch(`http://${base}/health`)).json()) as Health;
          return h.dependencies['traefik-metrics']?.status === 'up';
        },
        30_000,
      );
    });
  });
});
