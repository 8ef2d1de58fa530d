/**
 * The Redis provider's tree against a real redis-server: diffs, the lock between two routers, a
 * takeover when the holder is gone, retries while Redis is away, and a full rewrite when Redis
 * comes back empty.
 */
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisPublisher, toKeyValues } from '../../src/router/index.js';
import type { DynamicConfig } from '../../src/router/traefik-config.js';
import { missingTools, startFreezingProxy, startRedis, waitFor, type TestRedis } from '../harness/index.js';

const skip = missingTools(['redis-server']);
const ROOT = 'traefik';
const log = pino({ level: 'silent' });

function config(routes: Record<string, string>): DynamicConfig {
  const routers: Record<string, unknown> = {};
  const services: Record<string, unknown> = {};
  for (const [name, host] of Object.entries(routes)) {
    routers[name] = { entryPoints: ['web'], rule: `Host(\`${host}\`)`, service: name };
    services[name] = { loadBalancer: { servers: [{ url: `http://10.0.0.${name.length}:8080` }] } };
  }
  return { http: { routers, services, middlewares: {} } };
}

describe.skipIf(skip)('RedisPublisher against a real Redis', () => {
  let redis: TestRedis;
  const clients: Redis[] = [];
  const client = () => {
    const c = new Redis(redis.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => 200 });
    c.on('error', () => undefined);
    clients.push(c);
    return c;
  };
  const tree = async (c: Redis) => {
    const keys = await c.keys(`${ROOT}/*`);
    const values = keys.length > 0 ? await c.mget(...keys) : [];
    return new Map(keys.map((k, i) => [k, values[i]]));
  };
  const expectTree = async (c: Redis, want: DynamicConfig) => expect(await tree(c)).toEqual(toKeyValues(want, ROOT));

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await redis?.destroy();
  });

  it('writes the tree, lets only the lock holder write, hands over, retries and rewrites an emptied Redis', async () => {
    const check = client();
    const failures = { a: 0, b: 0 };
    const a = new RedisPublisher(client(), ROOT, { log, onFailure: () => failures.a++ });
    const b = new RedisPublisher(client(), ROOT, { log, onFailure: () => failures.b++ });
    await waitFor('clients connected', () => clients.every((c) => c.status === 'ready'), 5_000, 20);

    const one = config({ r1: 'one.test', r2: 'two.test' });
    await a.offer(() => one);
    await expectTree(check, one);

    // b does not hold the lock: its (different) config is not written.
    await b.offer(() => config({ r9: 'nine.test' }));
    await expectTree(check, one);

    // A removed route is deleted, a changed one rewritten.
    const two = config({ r1: 'uno.test' });
    await a.offer(() => two);
    await expectTree(check, two);

    // The holder dies (its lock expires): the next sync of b takes over and publishes b's config.
    await check.del(`swarm-edge-lock:${ROOT}`);
    const three = config({ r3: 'three.test', r4: 'four.test' });
    await b.offer(() => three);
    await expectTree(check, three);
    expect(await a.publish(() => one)).toBeUndefined();

    // Redis goes away: the write fails (counted), and lands by itself once Redis is back, empty.
    await redis.stop();
    const four = config({ r5: 'five.test' });
    await b.offer(() => four);
    expect(failures.b).toBeGreaterThan(0);
    await redis.start();
    await waitFor('clients reconnected', () => clients.every((c) => c.status === 'ready'), 10_000, 50);
    await b.sync();
    await expectTree(check, four);

    // Restarted without persistence while b thought it was current: forget() rewrites it all.
    await redis.stop();
    await redis.start();
    await waitFor('clients reconnected', () => clients.every((c) => c.status === 'ready'), 10_000, 50);
    expect(await tree(check)).toEqual(new Map());
    await b.forget();
    await expectTree(check, four);

    await b.stop();
    expect(await check.get(`swarm-edge-lock:${ROOT}`)).toBeNull();
  });

  it('refuses the write of a router paused between its lock check and its write (fencing), and repairs drift', async () => {
    const check = client();
    // Router a reaches Redis through a proxy that freezes its requests, as SIGSTOP would.
    const proxy = await startFreezingProxy({ host: '127.0.0.1', port: redis.port });
    const viaProxy = new Redis(`redis://127.0.0.1:${proxy.port}`, {
      maxRetriesPerRequest: 0,
      retryStrategy: () => 200,
    });
    viaProxy.on('error', () => undefined);
    clients.push(viaProxy);
    const a = new RedisPublisher(viaProxy, ROOT, { log });
    const b = new RedisPublisher(client(), ROOT, { log });
    await waitFor('clients connected', () => clients.every((c) => c.status === 'ready'), 5_000, 20);
    await check.flushall();
    try {
      const old = config({ r1: 'one.test', r2: 'two.test' });
      await a.offer(() => old);
      await expectTree(check, old);

      // a renews its lock, then is frozen just as its write (which names the tree's keys) goes out.
      const stale = config({ r1: 'stale.test' });
      const frozen = proxy.freezeAt(`${ROOT}/http/routers/r1/rule`);
      const pausedPublish = a.publish(() => stale);
      await frozen;
      // Its lock expires meanwhile, b takes over and publishes newer state.
      await check.del(`swarm-edge-lock:${ROOT}`);
      const newer = config({ r3: 'three.test', r4: 'four.test' });
      const newerSource = () => newer;
      expect(await b.publish(newerSource)).toBeDefined();
      await expectTree(check, newer);

      // a wakes up and sends its write: it must change nothing.
      proxy.thaw();
      expect(await pausedPublish).toBeUndefined();
      await expectTree(check, newer);
      expect(a.stats().fencedWrites).toBe(1);

      // Someone else changes the tree behind b's back: b's next verification repairs it.
      await check.set(`${ROOT}/http/routers/r3/rule`, 'Host(`evil.test`)');
      await check.del(`${ROOT}/http/routers/r4/rule`);
      expect(await b.publish(newerSource, Date.now() + 120_000)).toEqual({ set: 2, deleted: 0 });
      await expectTree(check, newer);
      expect(b.stats().repairs).toBe(1);
    } finally {
      await proxy.close();
    }
  });
});
