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
import { missingTools, startRedis, waitFor, type TestRedis } from '../harness/index.js';

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
});
