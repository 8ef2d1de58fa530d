/**
 * Redis behind Sentinel (REDIS_URL=redis+sentinel://…): the connection finds the master through
 * the sentinels, and when the master dies it follows the failover by itself. The Traefik tree is
 * written again to the new master (a failover may lose the last writes of an asynchronous
 * replica: the publisher's repair puts the whole tree back), and pub/sub (the feed's channels)
 * resubscribes on the new master. /health says redis is down during the failover and up after.
 */
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthRegistry } from '../../src/health/index.js';
import { createRedis, REDIS } from '../../src/redis/index.js';
import { RedisPublisher, toKeyValues } from '../../src/router/index.js';
import type { DynamicConfig } from '../../src/router/traefik-config.js';
import { missingTools, waitFor } from '../harness/index.js';
import { startRedisSentinel, type TestSentinel } from '../harness/redis-sentinel.js';

const skip = missingTools(['redis-server']);
const log = pino({ level: 'silent' });
const ROOT = 'traefik';

const config = (host: string): DynamicConfig => ({
  http: {
    routers: { r1: { entryPoints: ['web'], rule: `Host(\`${host}\`)`, service: 'r1' } },
    services: { r1: { loadBalancer: { servers: [{ url: 'http://127.0.0.1:8080' }] } } },
    middlewares: {},
  },
});

describe.skipIf(skip)('Redis behind Sentinel', () => {
  let sentinel: TestSentinel;
  const clients: Redis[] = [];
  beforeAll(async () => {
    sentinel = await startRedisSentinel();
  }, 120_000);
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await sentinel?.destroy();
  });

  const direct = (port: number) => {
    const c = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => 200 });
    c.on('error', () => undefined);
    clients.push(c);
    return c;
  };
  const tree = async (c: Redis) => {
    const keys = await c.keys(`${ROOT}/*`);
    const values = keys.length > 0 ? await c.mget(...keys) : [];
    return new Map(keys.map((k, i) => [k, values[i]]));
  };

  it('follows a failover: the tree is on the new master, channels resubscribe, /health recovers', async () => {
    const health = new HealthRegistry();
    health.register(REDIS, { enabled: true, optional: true });
    // A Sentinel target gives a plain connection (a cluster's is the other kind).
    const redis = createRedis(sentinel.url, { health, log }) as Redis;
    const sub = redis.duplicate({ connectionName: 'swarm-edge-feed' });
    sub.on('error', () => undefined);
    clients.push(redis, sub);
    await Promise.all([redis.connect(), sub.connect()]);
    const received: string[] = [];
    sub.on('message', (_channel: string, message: string) => received.push(message));
    await sub.subscribe('swarm-edge:metrics:dep-s');

    const publisher = new RedisPublisher(redis, ROOT, { log });
    const first = config('one.test');
    await publisher.offer(() => first);
    const oldMaster = await sentinel.masterPort();
    expect(await tree(direct(oldMaster))).toEqual(toKeyValues(first, ROOT));

    const newMaster = await sentinel.failOver();
    expect(newMaster).not.toBe(oldMaster);
    // The connection finds the new master by itself, and says so in /health.
    await waitFor(
      'reconnected to the new master',
      async () => {
        if (redis.status !== 'ready') return false;
        const role = (await redis.call('ROLE').catch(() => ['none'])) as string[];
        return role[0] === 'master';
      },
      60_000,
      200,
    );
    expect(health.isUp(REDIS)).toBe(true);

    // The next publish, or the holder's periodic repair, writes the whole tree to the new master.
    const second = config('two.test');
    await waitFor(
      'tree on the new master',
      async () => {
        await publisher.offer(() => second).catch(() => undefined);
        const sorted = (map: Map<string, unknown>) => JSON.stringify([...map].sort(([a], [b]) => (a < b ? -1 : 1)));
        return sorted(await tree(direct(newMaster))) === sorted(toKeyValues(second, ROOT));
      },
      30_000,
      500,
    );

    // The feed's channel: subscribed again on the new master, messages flow.
    await waitFor(
      'a message through the new master',
      async () => {
        await redis.publish('swarm-edge:metrics:dep-s', 'after-failover');
        return received.includes('after-failover');
      },
      30_000,
      200,
    );
    await publisher.stop();
  });
});
