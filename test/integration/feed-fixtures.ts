/**
 * What the feed's integration tests share: an instance of the feed on a real socket (with or
 * without Redis), a websocket client that records frames, tokens and samples.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import pino from 'pino';
import { WebSocket } from 'ws';
import { createFeedAuthenticator } from '../../src/feed/feed-auth.js';
import { MetricsFeed } from '../../src/feed/metrics-feed.js';
import { registerFeedRoutes } from '../../src/http/index.js';
import { LiveCache, type Sample } from '../../src/metrics/index.js';
import { FeedBus, type RedisClient } from '../../src/redis/index.js';
import { listenOnLoopback } from '../harness/index.js';

export const SECRET = 'feed-integration-secret-0123456789abcdef';
const log = pino({ level: 'silent' });

export interface Instance {
  app: FastifyInstance;
  feed: MetricsFeed;
  url: string;
  redis?: RedisClient;
}

/** Log lines at error level or above, across every instance of this file. */
export const errorLines: string[] = [];
const errorLog: FastifyBaseLogger = pino(
  { level: 'debug' },
  { write: (line: string) => void ((JSON.parse(line) as { level: number }).level >= 50 && errorLines.push(line)) },
);

export async function startInstance(
  options: {
    redisUrl?: string;
    /** A connection made elsewhere (a cluster's, by createRedis): the feed subscribes on its duplicate. */
    redis?: RedisClient;
    maxBufferedBytes?: number;
    slowGraceMs?: number;
    authDelayMs?: number;
  } = {},
): Promise<Instance> {
  const app = Fastify({ loggerInstance: errorLog });
  const cache = new LiveCache({ windowMs: 300_000, maxContainers: 10_000, maxBytes: 64 * 1024 * 1024 });
  const redis: RedisClient | undefined =
    options.redis ??
    (options.redisUrl
      ? new Redis(options.redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false, retryStrategy: () => 200 })
      : undefined);
  redis?.on('error', () => undefined);
  const sub = redis?.duplicate();
  sub?.on('error', () => undefined);
  const feed = new MetricsFeed(
    {
      maxBufferedBytes: options.maxBufferedBytes ?? 1024 * 1024,
      slowGraceMs: options.slowGraceMs ?? 10_000,
      maxSubscriptions: 5,
      heartbeatMs: 1_000,
      windowMs: 300_000,
    },
    { cache, redis: redis && sub ? new FeedBus(redis, sub) : undefined, log },
  );
  const jwt = createFeedAuthenticator({
    mode: 'jwt',
    secret: SECRET,
    jwksUrl: undefined,
    issuer: undefined,
    audience: undefined,
  });
  // A slow authenticator (a JWKS fetch, a busy machine) lets frames arrive before the grant.
  const delay = options.authDelayMs ?? 0;
  const authenticate =
    delay > 0
      ? Object.assign(async (t: string | undefined) => (await new Promise((r) => setTimeout(r, delay)), jwt(t)), {
          configured: true,
        })
      : jwt;
  await registerFeedRoutes(app, { feed, authenticate });
  feed.start();
  const port = (await listenOnLoopback(app)).port;
  return { app, feed, url: `ws://127.0.0.1:${port}/ws/metrics`, ...(redis ? { redis } : {}) };
}

export const token = (deployments: string[], claims: Record<string, unknown> = {}) =>
  new SignJWT({ deployments, ...claims })
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime('10m')
    .sign(new TextEncoder().encode(SECRET));

/** A client that records every frame and its close code. */
export function connect(url: string) {
  const socket = new WebSocket(url);
  const frames: Array<Record<string, unknown>> = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  socket.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString()) as Record<string, unknown>));
  socket.on('error', () => undefined);
  const opened = new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  return {
    socket,
    frames,
    closed,
    opened,
    send: (value: unknown) => socket.send(typeof value === 'string' ? value : JSON.stringify(value)),
  };
}

let seq = 0;
export function samples(deploymentId: string, containers: number, padding = 0): Sample[] {
  seq += 1;
  return Array.from({ length: containers }, (_, i) => ({
    containerId: `${deploymentId.replace(/[^a-f0-9]/g, 'a')}${String(i).padStart(8, '0')}`.padEnd(64, 'b').slice(0, 64),
    deploymentId,
    nodeId: 'n1',
    serviceId: null,
    taskId: null,
    ts: Date.now() + seq,
    cpuPercent: seq,
    memoryBytes: 1,
    memoryLimitBytes: 2,
    pids: 1,
    netRxBytes: 0,
    netTxBytes: 0,
    blockReadBytes: 0,
    blockWriteBytes: 0,
    netRxDelta: 0,
    netTxDelta: 0,
    blockReadDelta: 0,
    blockWriteDelta: 0,
    netRxRate: 0,
    netTxRate: 0,
    blockReadRate: 0,
    blockWriteRate: 0,
    ...(padding ? { pad: 'x'.repeat(padding) } : {}),
  }));
}
