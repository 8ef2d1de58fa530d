/**
 * Websocket fan-out: one server (the real feed code: fastify, @fastify/websocket, MetricsFeed)
 * and 2,000 subscribers in a separate process. Every tick, each of 100 deployments gets samples
 * of its 10 containers; the figure is the time from a sample's creation to its arrival at a
 * reading client. Run twice in the same process: all clients reading, then 10 % stalled (they
 * stop reading their socket). Ratio: healthy clients' p99 with stalled ones vs without.
 *
 *   npx tsx bench/feed.ts        # BENCH_CLIENTS=2000 BENCH_SECONDS=20 BENCH_TICK_MS=1000
 */
import { fork } from 'node:child_process';
import Fastify from 'fastify';
import pino from 'pino';
import { createFeedAuthenticator } from '../src/feed/feed-auth.js';
import { MetricsFeed } from '../src/feed/metrics-feed.js';
import { registerFeedRoutes } from '../src/http/index.js';
import { LiveCache, type Sample } from '../src/metrics/index.js';

const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 2000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const TICK_MS = Number(process.env.BENCH_TICK_MS ?? 1000);
const DEPLOYMENTS = 100;
const CONTAINERS = 10;

async function run(stalledShare: number) {
  const app = Fastify({ logger: false });
  const cache = new LiveCache({ windowMs: 300_000, maxContainers: 10_000, maxBytes: 64 * 1024 * 1024 });
  const feed = new MetricsFeed(
    { maxBufferedBytes: 256 * 1024, slowGraceMs: 5_000, maxSubscriptions: 10, heartbeatMs: 30_000 },
    { cache, redis: undefined, log: pino({ level: 'silent' }) },
  );
  await registerFeedRoutes(app, { feed, authenticate: createFeedAuthenticator({ mode: 'none', secret: undefined, jwksUrl: undefined, issuer: undefined, audience: undefined }) });
  feed.start();
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const url = `ws://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/ws/metrics`;

  const child = fork(new URL('./feed-clients.ts', import.meta.url).pathname, [url, String(CLIENTS), String(stalledShare), String(DEPLOYMENTS)], { execArgv: ['--import', 'tsx'] });
  type Report = { count: number; p50: number; p99: number; max: number; closedSlow: number; closedOther: number };
  const next = (type: string) => new Promise<Report>((resolve) => child.on('message', (m: Report & { type: string }) => m.type === type && resolve(m)));
  await next('ready');

  let seq = 0;
  let peakRss = 0;
  const publishMs: number[] = [];
  const tick = () => {
    const ts = performance.timeOrigin + performance.now();
    const samples: Sample[] = [];
    for (let d = 0; d < DEPLOYMENTS; d++) {
      for (let c = 0; c < CONTAINERS; c++) {
        samples.push({
          containerId: `${d.toString(16).padStart(4, '0')}${c.toString(16).padStart(4, '0')}`.padEnd(64, 'f'), deploymentId: `dep-${d}`, nodeId: 'n1', serviceId: null, taskId: null,
          ts, cpuPercent: (seq % 100) + 0.5, memoryBytes: 123_456_789, memoryLimitBytes: 268_435_456, pids: 3, netRxBytes: seq * 1000, netTxBytes: seq * 500,
          blockReadBytes: 0, blockWriteBytes: seq * 10, netRxDelta: 1000, netTxDelta: 500, blockReadDelta: 0, blockWriteDelta: 10,
          netRxRate: 4000, netTxRate: 2000, blockReadRate: 0, blockWriteRate: 40,
        });
      }
    }
    seq += 1;
    cache.add(samples);
    const started = performance.now();
    feed.publishLocal(samples);
    publishMs.push(performance.now() - started);
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  };
  // Warm up, then measure.
  const timer = setInterval(tick, TICK_MS);
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  child.send({ type: 'measure' });
  const rssStart = process.memoryUsage().rss;
  await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
  clearInterval(timer);
  const reportPromise = next('report');
  child.send({ type: 'report' });
  const report = await reportPromise;
  const stats = feed.stats();
  await feed.stop();
  await app.close();
  publishMs.sort((a, b) => a - b);
  return { ...report, publishP50: publishMs[Math.floor(publishMs.length / 2)]!, peakRss, rssStart, slowDisconnects: stats.slowDisconnects, conflated: stats.conflated, samplesSent: stats.samplesSent };
}

const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
const healthy = await run(0);
console.log(`${CLIENTS} subscribers, all reading: sample → client p50 ${healthy.p50.toFixed(1)} ms, p99 ${healthy.p99.toFixed(1)} ms, max ${healthy.max.toFixed(1)} ms over ${healthy.count} deliveries; server fan-out per tick (synchronous part) p50 ${healthy.publishP50.toFixed(1)} ms; server peak RSS ${mib(healthy.peakRss)}`);
const stalled = await run(0.1);
console.log(
  `${CLIENTS} subscribers, 10 % stalled: healthy clients p50 ${stalled.p50.toFixed(1)} ms, p99 ${stalled.p99.toFixed(1)} ms, max ${stalled.max.toFixed(1)} ms over ${stalled.count} deliveries; ` +
    `server peak RSS ${mib(stalled.peakRss)}; closed as slow ${stalled.slowDisconnects}; conflated ${stalled.conflated} → p99 ratio vs all reading ${(stalled.p99 / healthy.p99).toFixed(2)}× (target ≤ 1.5×)`,
);
