/**
 * Websocket fan-out: one server (the real feed code: fastify, @fastify/websocket, MetricsFeed)
 * and 2,000 subscribers in a separate process. Every tick, each of 100 deployments gets samples
 * of its 10 containers; the figure is the time from a sample's creation to its arrival at a
 * reading client. Three runs in the same process, each with a fresh server and fresh clients: the
 * baseline, a bare `ws` broadcast of the same frames; the feed with all clients reading; the feed
 * with 10 % stalled (they stop reading their socket). Ratios: the feed's p99 against the bare
 * broadcast, and healthy clients' p99 with stalled ones against without. The stalled run goes on
 * (ticks and measurement included) until the server has dropped every stalled client: the kernel
 * absorbs megabytes per loopback socket before the buffer limit is reached, so it is the
 * heartbeat that finds them, within two intervals.
 *
 *   npx tsx bench/feed.ts        # BENCH_CLIENTS=2000 BENCH_SECONDS=20 BENCH_TICK_MS=1000
 */
import { fork } from 'node:child_process';
import Fastify from 'fastify';
import pino from 'pino';
import { createFeedAuthenticator } from '../src/feed/feed-auth.js';
import { groupByDeployment, MetricsFeed } from '../src/feed/metrics-feed.js';
import { sharedFrame } from '../src/feed/subscriber.js';
import { registerFeedRoutes } from '../src/http/index.js';
import { LiveCache, type Sample } from '../src/metrics/index.js';
import { WebSocketServer, type WebSocket } from 'ws';

const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 2000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const TICK_MS = Number(process.env.BENCH_TICK_MS ?? 1000);
/** The service's default FEED_HEARTBEAT_SECONDS. */
const HEARTBEAT_MS = 30_000;
const DEPLOYMENTS = 100;
const CONTAINERS = 10;

interface Server {
  readonly url: string;
  /** Delivers one tick's samples to the subscribers; returns when the synchronous part is done. */
  publish(samples: Sample[]): void;
  stats(): { slowDisconnects: number; conflated: number; disconnects: number };
  close(): Promise<void>;
}

/** The service's own feed: fastify, @fastify/websocket, the authenticator and MetricsFeed. */
async function feedServer(): Promise<Server> {
  const app = Fastify({ logger: false });
  const cache = new LiveCache({ windowMs: 300_000, maxContainers: 10_000, maxBytes: 64 * 1024 * 1024 });
  const feed = new MetricsFeed(
    {
      maxBufferedBytes: 256 * 1024,
      slowGraceMs: 5_000,
      maxSubscriptions: 10,
      heartbeatMs: HEARTBEAT_MS,
      windowMs: 300_000,
    },
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
  feed.start();
  await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    url: `ws://127.0.0.1:${portOf(app.server.address())}/ws/metrics`,
    // In the service's order (src/app.ts): subscribers first, then the live cache.
    publish: (samples) => {
      feed.publishLocal(samples);
      cache.add(samples);
    },
    stats: () => feed.stats(),
    close: async () => {
      await feed.stop();
      await app.close();
    },
  };
}

/**
 * The baseline: a bare `ws` server that keeps a set of sockets per deployment and sends each
 * deployment's frame (the feed's own frame text) to them, with no auth, no queue, no backpressure and no slow-client check:
 * the least a websocket broadcast can cost on this machine.
 */
async function bareServer(): Promise<Server> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => wss.once('listening', resolve));
  const byDeployment = new Map<string, Set<WebSocket>>();
  wss.on('connection', (socket) => {
    socket.on('message', (data: Buffer) => {
      const { deploymentId } = JSON.parse(data.toString()) as { deploymentId: string };
      const set = byDeployment.get(deploymentId) ?? new Set();
      byDeployment.set(deploymentId, set.add(socket));
      socket.send(JSON.stringify({ type: 'subscribed', deploymentId }));
    });
    socket.on('close', () => byDeployment.forEach((set) => set.delete(socket)));
  });
  return {
    url: `ws://127.0.0.1:${portOf(wss.address())}/`,
    publish: (samples) => {
      for (const [deploymentId, group] of groupByDeployment(samples)) {
        const frame = sharedFrame(group);
        for (const socket of byDeployment.get(deploymentId) ?? []) socket.send(frame, { binary: false });
      }
    },
    stats: () => ({ slowDisconnects: 0, conflated: 0, disconnects: 0 }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of wss.clients) socket.terminate();
        wss.close(() => resolve());
      }),
  };
}

function portOf(address: ReturnType<WebSocketServer['address']>): number {
  return typeof address === 'object' && address ? address.port : 0;
}

async function run(server: Server, stalledShare: number) {
  const url = server.url;
  const child = fork(
    new URL('./feed-clients.ts', import.meta.url).pathname,
    [url, String(CLIENTS), String(stalledShare), String(DEPLOYMENTS)],
    { execArgv: ['--import', 'tsx'] },
  );
  type Report = {
    count: number;
    p50: number;
    p99: number;
    max: number;
    closedSlow: number;
    closedOther: number;
    cpuMs: number;
  };
  const next = (type: string) =>
    new Promise<Report>((resolve) =>
      child.on('message', (m: Report & { type: string }) => m.type === type && resolve(m)),
    );
  await next('ready');
  const stalledSince = performance.now();

  let seq = 0;
  let peakRss = 0;
  const publishMs: number[] = [];
  const tick = () => {
    const ts = performance.timeOrigin + performance.now();
    const samples: Sample[] = [];
    for (let d = 0; d < DEPLOYMENTS; d++) {
      for (let c = 0; c < CONTAINERS; c++) {
        samples.push({
          containerId: `${d.toString(16).padStart(4, '0')}${c.toString(16).padStart(4, '0')}`.padEnd(64, 'f'),
          deploymentId: `dep-${d}`,
          nodeId: 'n1',
          serviceId: null,
          taskId: null,
          ts,
          cpuPercent: (seq % 100) + 0.5,
          memoryBytes: 123_456_789,
          memoryLimitBytes: 268_435_456,
          pids: 3,
          netRxBytes: seq * 1000,
          netTxBytes: seq * 500,
          blockReadBytes: 0,
          blockWriteBytes: seq * 10,
          netRxDelta: 1000,
          netTxDelta: 500,
          blockReadDelta: 0,
          blockWriteDelta: 10,
          netRxRate: 4000,
          netTxRate: 2000,
          blockReadRate: 0,
          blockWriteRate: 40,
        });
      }
    }
    seq += 1;
    const started = performance.now();
    server.publish(samples);
    publishMs.push(performance.now() - started);
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  };
  // Warm up, then measure.
  const timer = setInterval(tick, TICK_MS);
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  child.send({ type: 'measure' });
  const measureStarted = performance.now();
  const rssStart = process.memoryUsage().rss;
  const cpuStart = process.cpuUsage();
  await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
  const serverCpu = process.cpuUsage(cpuStart);
  // Stalled clients answer no pings either: with ticks going on, wait for the server to drop them
  // (two heartbeats at most), and watch its memory meanwhile.
  const stalledClients = stalledShare > 0 ? Math.ceil(CLIENTS * stalledShare) : 0;
  const dropStarted = performance.now();
  let droppedAfterMs: number | undefined;
  while (stalledClients > 0 && performance.now() - dropStarted < 3 * HEARTBEAT_MS) {
    if (server.stats().disconnects >= stalledClients) {
      droppedAfterMs = performance.now() - stalledSince;
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  clearInterval(timer);
  const clientTicks = (performance.now() - measureStarted) / TICK_MS;
  const reportPromise = next('report');
  child.send({ type: 'report' });
  const report = await reportPromise;
  const stats = server.stats();
  await server.close();
  publishMs.sort((a, b) => a - b);
  return {
    ...report,
    ticks: (SECONDS * 1000) / TICK_MS,
    clientTicks,
    serverCpuMs: (serverCpu.user + serverCpu.system) / 1000,
    publishP50: publishMs[Math.floor(publishMs.length / 2)]!,
    peakRss,
    rssStart,
    slowDisconnects: stats.slowDisconnects,
    conflated: stats.conflated,
    disconnects: stats.disconnects,
    droppedAfterMs,
  };
}

const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
const line = (r: Awaited<ReturnType<typeof run>>) =>
  `p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, max ${r.max.toFixed(1)} ms over ${r.count} deliveries; synchronous fan-out per tick p50 ${r.publishP50.toFixed(1)} ms; server peak RSS ${mib(r.peakRss)}; CPU per tick: server ${(r.serverCpuMs / r.ticks).toFixed(0)} ms, client harness ${(r.cpuMs / r.clientTicks).toFixed(0)} ms`;
const bare = await run(await bareServer(), 0);
console.log(`baseline, bare ws broadcast, ${CLIENTS} subscribers all reading: ${line(bare)}`);
const healthy = await run(await feedServer(), 0);
console.log(
  `feed, ${CLIENTS} subscribers all reading: ${line(healthy)} → p99 ${(healthy.p99 / bare.p99).toFixed(2)}× the bare ws baseline`,
);
const stalled = await run(await feedServer(), 0.1);
console.log(
  `feed, ${CLIENTS} subscribers, 10 % stalled: healthy clients ${line(stalled)}; stalled clients dropped ${stalled.droppedAfterMs === undefined ? 'not all' : `all ${(stalled.droppedAfterMs / 1000).toFixed(0)} s after they stalled`} (closed as slow ${stalled.slowDisconnects}, for no pong ${stalled.disconnects - stalled.slowDisconnects}); conflated ${stalled.conflated} → p99 ${(stalled.p99 / healthy.p99).toFixed(2)}× all reading (target ≤ 1.5×)`,
);
