/**
 * The dashboard in headless Chromium (Debian's, driven by playwright-core), against the real
 * history API on PostgreSQL and the real feed: pick a deployment from the list, switch to 1 h, see
 * the stored history and then new live points, reconnect with resume after the server drops the
 * socket, and keep the shareable URL. Screenshots go to .data/screenshots.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { SignJWT } from 'jose';
import type pg from 'pg';
import pino from 'pino';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, migrate, migrations } from '../../src/db/index.js';
import { createFeedAuthenticator } from '../../src/feed/feed-auth.js';
import { MetricsFeed } from '../../src/feed/metrics-feed.js';
import { HistoryService } from '../../src/history/history-service.js';
import { RequestHistory } from '../../src/traffic/index.js';
import { NodeHistory } from '../../src/nodes/index.js';
import { registerFeedRoutes, registerHistoryRoutes, registerUiRoutes } from '../../src/http/index.js';
import { AggregateStore, LiveCache, type AggregateRow, type Sample } from '../../src/metrics/index.js';
import {
  CHROMIUM,
  missingTools,
  startPostgres,
  waitFor,
  type TestPostgres,
  listenOnLoopback,
} from '../harness/index.js';

const skip = missingTools(['chromium', 'root', 'postgres']);
const screenshots = path.resolve(import.meta.dirname, '../../.data/screenshots');
const SECRET = 'dashboard-integration-secret-0123456789abcdef';
const log = pino({ level: 'silent' });
const CONTAINERS = ['a'.repeat(64), 'b'.repeat(64)];

const token = (deployments: string[]) =>
  new SignJWT({ deployments })
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime('10m')
    .sign(new TextEncoder().encode(SECRET));

/** Minute rows of dep-live's two containers over the last `minutes`, a slow CPU wave. */
function history(now: number, minutes: number): AggregateRow[] {
  const start = Math.floor(now / 60_000) * 60_000 - minutes * 60_000;
  const rows: AggregateRow[] = [];
  for (let m = 0; m < minutes - 2; m++) {
    CONTAINERS.forEach((containerId, i) =>
      rows.push({
        bucket: start + m * 60_000,
        containerId,
        deploymentId: 'dep-live',
        nodeId: `node-${i + 1}`,
        serviceId: 'svc',
        cpuAvg: 20 + 10 * Math.sin(m / 6 + i),
        cpuMax: 35,
        memoryAvg: Math.round((60 + m / 4) * 2 ** 20),
        memoryMax: 90 * 2 ** 20,
        netRxBytes: Math.round(6e5 + 2e5 * Math.cos(m / 5)),
        netTxBytes: 3e5,
        blockReadBytes: 0,
        blockWriteBytes: 6e4,
        samples: 12,
        cpuThrottledPeriods: 0,
        cpuThrottledSeconds: 0,
        oomKills: 0,
        exits: 0,
      }),
    );
  }
  return rows;
}

function liveSamples(tick: number): Sample[] {
  return CONTAINERS.map((containerId, i) => ({
    containerId,
    deploymentId: 'dep-live',
    nodeId: `node-${i + 1}`,
    serviceId: 'svc',
    taskId: null,
    ts: Date.now(),
    cpuPercent: 20 + 15 * Math.sin(tick / 2 + i),
    memoryBytes: (80 + tick / 10) * 2 ** 20,
    memoryLimitBytes: 256 * 2 ** 20,
    pids: 3,
    netRxBytes: tick * 1e5,
    netTxBytes: tick * 5e4,
    blockReadBytes: 0,
    blockWriteBytes: 0,
    netRxDelta: 1e5,
    netTxDelta: 5e4,
    blockReadDelta: 0,
    blockWriteDelta: 0,
    netRxRate: 2e4 + 1e4 * Math.cos(tick),
    netTxRate: 1e4,
    blockReadRate: 0,
    blockWriteRate: 0,
  }));
}

describe.skipIf(skip)('dashboard in headless Chromium', () => {
  let postgres: TestPostgres;
  let pool: pg.Pool;
  let app: FastifyInstance;
  let feed: MetricsFeed;
  let browser: Browser;
  let url: string;
  let timer: NodeJS.Timeout;

  beforeAll(async () => {
    postgres = await startPostgres();
    pool = createPool({ connectionString: postgres.url, applicationName: 'test', statementTimeoutMs: 5_000 }, log);
    await migrate(pool, migrations);
    const store = new AggregateStore(
      {
        bufferMaxRows: 10_000,
        batchRows: 5_000,
        retentionDays: 14,
        rollupRetentionDays: 365,
        statementTimeoutMs: 5_000,
      },
      { pool, log },
    );
    store.enqueue(history(Date.now(), 120));
    await store.flush();
    await pool.query(
      `INSERT INTO deployment_locations (deployment_id, node_id, node_hostname, container_id, status)
       VALUES ('dep-live', 'node-1', 'host-1', $1, 'running'), ('dep-live', 'node-2', 'host-2', $2, 'running'),
              ('dep-other', 'node-1', 'host-1', $3, 'running')`,
      [...CONTAINERS, 'c'.repeat(64)],
    );

    app = Fastify({ logger: false });
    const cache = new LiveCache({ windowMs: 300_000, maxContainers: 100, maxBytes: 1 << 24 });
    feed = new MetricsFeed(
      { maxBufferedBytes: 1 << 20, slowGraceMs: 10_000, maxSubscriptions: 5, heartbeatMs: 30_000, windowMs: 300_000 },
      { cache, redis: undefined, log },
    );
    const authenticate = createFeedAuthenticator({
      mode: 'jwt',
      secret: SECRET,
      jwksUrl: undefined,
      issuer: undefined,
      audience: undefined,
    });
    await registerFeedRoutes(app, { feed, authenticate });
    registerHistoryRoutes(app, {
      requests: new RequestHistory({ metricsPool: pool, storageKind: () => store.storageKind() }),
      nodes: new NodeHistory({ metricsPool: pool, storageKind: () => store.storageKind() }),
      history: new HistoryService({
        metricsPool: pool,
        storageKind: () => store.storageKind(),
        locations: { pool, isReady: () => true },
      }),
      authenticate,
      retentionDays: 14,
    });
    registerUiRoutes(app);
    feed.start();
    url = (await listenOnLoopback(app)).url;
    let tick = 0;
    const publish = () => {
      tick += 1;
      const samples = liveSamples(tick);
      cache.add(samples);
      feed.publishLocal(samples);
      feed.publishRequests([
        {
          deploymentId: 'dep-live',
          ts: Date.now(),
          intervalMs: 1_000,
          requests: 40,
          requestsPerSecond: 40,
          status: { '1xx': 0, '2xx': 38, '3xx': 0, '4xx': 0, '5xx': 2, other: 0 },
          requestBytes: 4_000,
          responseBytes: 400_000,
          latencyMs: { p50: 12, p95: 48, p99: 95 },
          openConnections: 3,
        },
      ]);
    };
    publish();
    timer = setInterval(publish, 1_000);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless=new'] });
  });
  afterAll(async () => {
    clearInterval(timer);
    await browser?.close();
    await feed?.stop();
    await app?.close();
    await pool?.end().catch(() => undefined);
    await postgres?.destroy();
  });

  /** A page that records script errors and console errors (a CSP violation is one). */
  async function open(): Promise<{ page: Page; errors: string[] }> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    return { page, errors };
  }
  const points = async (page: Page, kind: 'historyPoints' | 'livePoints') =>
    Number(
      (await page.locator('#chart-cpu').getAttribute(`data-${kind === 'historyPoints' ? 'history' : 'live'}-points`)) ??
        0,
    );

  it('picks a deployment from the list, joins 1 h of history to new live points, and resumes after a drop', async () => {
    const { page, errors } = await open();
    await page.goto(`${url}/ui#token=${await token(['dep-live', 'dep-other'])}`);
    // The token left the address bar at once; the list holds what the token may see.
    expect(page.url()).toBe(`${url}/ui`);
    await page.waitForSelector('#deployment option[value="dep-other"]', { state: 'attached', timeout: 10_000 });
    await page.selectOption('#deployment', 'dep-live');
    await waitFor('live', async () => (await page.getAttribute('#connection', 'data-state')) === 'live', 10_000, 100);
    await waitFor(
      'two container rows',
      async () => (await page.locator('tr[data-container]').count()) === 2,
      10_000,
      100,
    );
    expect(new URL(page.url()).search).toBe('?deployment=dep-live&range=live');

    await page.click('#ranges button[data-range="1h"]');
    await waitFor('history points', async () => (await points(page, 'historyPoints')) >= 50, 10_000, 100);
    expect(new URL(page.url()).search).toBe('?deployment=dep-live&range=1h');
    const live = await points(page, 'livePoints');
    await waitFor(
      'a new live point after the history',
      async () => (await points(page, 'livePoints')) > live,
      15_000,
      200,
    );
    // Values carry units: hovering a chart fills its legend (the axes are drawn on a canvas).
    await page.hover('#chart-memory .u-over');
    expect(await page.locator('#chart-memory .u-legend').textContent()).toContain('MiB');
    await page.hover('#chart-cpu .u-over');
    expect(await page.locator('#chart-cpu .u-legend').textContent()).toContain('%');
    // Traefik's traffic of the deployment, live: requests per second, 5xx share and p95.
    await waitFor(
      'request points',
      async () => Number(await page.locator('#chart-requests').getAttribute('data-points')) > 0,
      10_000,
      100,
    );
    const totals = (await page.textContent('#totals')) ?? '';
    expect(totals).toContain('40/s');
    expect(totals).toContain('5.0 %');
    expect(totals).toContain('48 ms');
    mkdirSync(screenshots, { recursive: true });
    writeFileSync(path.join(screenshots, 'dashboard-1h.png'), await page.screenshot({ fullPage: true }));

    // The server drops every socket: the page reconnects and resumes from its newest sample.
    for (const client of app.websocketServer.clients) client.terminate();
    await waitFor(
      'resumed',
      async () => ((await page.textContent('#connection')) ?? '').includes('resumed without gaps'),
      15_000,
      100,
    );
    expect(feed.stats().resumesRecovered).toBeGreaterThanOrEqual(1);

    // The shared URL opens the same view (the token stays in this tab's session storage).
    await page.goto(`${url}/ui?deployment=dep-live&range=1h`);
    await waitFor('history from the shared URL', async () => (await points(page, 'historyPoints')) >= 50, 10_000, 100);
    expect(await page.locator('#ranges button[aria-pressed="true"]').textContent()).toBe('1 h');
    writeFileSync(path.join(screenshots, 'dashboard-shared-url.png'), await page.screenshot({ fullPage: true }));
    expect(errors).toEqual([]);
    await page.close();
  });

  it('says why when the token does not grant the deployment', async () => {
    const { page } = await open();
    await page.goto(`${url}/ui?deployment=dep-live&range=1h#token=${await token(['dep-other'])}`);
    await waitFor(
      'the refusal to show',
      async () => ((await page.textContent('#message')) ?? '').includes('does not grant'),
      10_000,
      100,
    );
    await page.close();
  });
});
