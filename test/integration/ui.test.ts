/**
 * The built-in live page in headless Chromium (Debian's, driven by playwright-core): it
 * subscribes to the websocket feed and draws a sparkline per container; the screenshot must show
 * them. Samples come from the real feed code; a synthetic publisher stands in for the collector.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import pino from 'pino';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFeedAuthenticator } from '../../src/feed/feed-auth.js';
import { MetricsFeed } from '../../src/feed/metrics-feed.js';
import { registerFeedRoutes, registerUiRoutes } from '../../src/http/index.js';
import { LiveCache } from '../../src/metrics/index.js';
import { CHROMIUM, missingTools, waitFor } from '../harness/index.js';

const skip = missingTools(['chromium']);
const screenshots = path.resolve(import.meta.dirname, '../../.data/screenshots');

describe.skipIf(skip)('live page in headless Chromium', () => {
  let app: FastifyInstance;
  let feed: MetricsFeed;
  let browser: Browser;
  let url: string;
  let timer: NodeJS.Timeout;

  beforeAll(async () => {
    app = Fastify({ logger: false });
    const cache = new LiveCache({ windowMs: 300_000, maxContainers: 100, maxBytes: 1 << 24 });
    feed = new MetricsFeed(
      { maxBufferedBytes: 1 << 20, slowGraceMs: 10_000, maxSubscriptions: 5, heartbeatMs: 30_000, windowMs: 300_000 },
      { cache, redis: undefined, log: pino({ level: 'silent' }) },
    );
    await registerFeedRoutes(app, {
      feed,
      authenticate: createFeedAuthenticator({
        mode: 'none',
        secret: undefined,
        jwksUrl: undefined,
        issuer: undefined,
        audience: undefined,
      }),
    });
    registerUiRoutes(app);
    feed.start();
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    let tick = 0;
    const publish = () => {
      tick += 1;
      const samples = ['a', 'b'].map((c, i) => ({
        containerId: c.repeat(64),
        deploymentId: 'dep-live',
        nodeId: 'n1',
        serviceId: null,
        taskId: null,
        ts: Date.now(),
        cpuPercent: 20 + 15 * Math.sin(tick / 2 + i),
        memoryBytes: (50 + tick) * 2 ** 20,
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
      cache.add(samples);
      feed.publishLocal(samples);
    };
    for (let i = 0; i < 10; i++) publish();
    timer = setInterval(publish, 200);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless=new'] });
  });
  afterAll(async () => {
    clearInterval(timer);
    await browser?.close();
    await feed?.stop();
    await app?.close();
  });

  it('shows live sparklines per container of the chosen deployment', async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 300 } });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${url}/ui?deployment=dep-live`);
    await page.waitForSelector('tr[data-container] svg.cpu polyline', { timeout: 10_000 });
    // Live: the CPU column changes as new samples arrive.
    const first = await page.locator('tr[data-container] td.value').first().textContent();
    // Polled from here: the page's CSP (no eval) also applies to injected functions.
    await waitFor(
      'the CPU figure to change',
      async () => (await page.locator('tr[data-container] td.value').first().textContent()) !== first,
      10_000,
      100,
    );
    expect(await page.locator('tr[data-container]').count()).toBe(2);
    expect(await page.textContent('#status')).toContain('watching dep-live');
    // The snapshot's samples share a few timestamps (published in one burst): the line grows as
    // live samples arrive every 200 ms, so wait for them rather than race the first one.
    const pointsOf = async () =>
      (await page.locator('tr[data-container] svg.cpu polyline').first().getAttribute('points'))?.split(' ').length ??
      0;
    await waitFor('the sparkline to hold more than 5 points', async () => (await pointsOf()) > 5, 10_000, 100);
    expect(await pointsOf()).toBeGreaterThan(5);

    const png = await page.screenshot();
    mkdirSync(screenshots, { recursive: true });
    writeFileSync(path.join(screenshots, 'live-page.png'), png);
    // The sparklines are drawn in colour on a dark page: the screenshot holds their blue.
    // Counted in a blank page: the live page's CSP forbids evaluated code. Browser-side code is
    // passed as text because this project compiles without the DOM library.
    const blank = await browser.newPage();
    const colours = await blank.evaluate<number>(`(async () => {
      const image = new Image();
      image.src = 'data:image/png;base64,${png.toString('base64')}';
      await image.decode();
      const canvas = document.createElement('canvas');
      canvas.width = image.width;
      canvas.height = image.height;
      const context = canvas.getContext('2d');
      context.drawImage(image, 0, 0);
      const pixels = context.getImageData(0, 0, image.width, image.height).data;
      let blue = 0;
      for (let i = 0; i < pixels.length; i += 4) if (pixels[i + 2] > 200 && pixels[i] < 140) blue += 1;
      return blue;
    })()`);
    await blank.close();
    expect(colours).toBeGreaterThan(50);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('says why when the deployment is refused', async () => {
    const page = await browser.newPage();
    await page.goto(`${url}/ui?deployment=${encodeURIComponent('bad id`')}`);
    await waitFor(
      'the error to show',
      async () => (await page.locator('#status').getAttribute('class')) === 'error',
      10_000,
      100,
    );
    expect(await page.textContent('#status')).toContain('bad_message');
    await page.close();
  });
});
