/**
 * The feed on a real Redis Cluster (three masters, three replicas): two instances connected as the
 * service connects (createRedis with redis+cluster://), samples crossing between them on sharded
 * pub/sub, snapshots from the window stream, and a master killed under them.
 */
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthRegistry } from '../../src/health/index.js';
import { createRedis, REDIS } from '../../src/redis/index.js';
import type { Sample } from '../../src/metrics/index.js';
import { missingTools, waitFor } from '../harness/index.js';
import { startRedisCluster, type TestRedisCluster } from '../harness/redis-cluster.js';
import { connect, samples, startInstance, token, type Instance } from './feed-fixtures.js';

const skip = missingTools(['redis-server']);
const log = pino({ level: 'silent' });
const DEPLOYMENT = 'dep-cluster';
const CHANNEL = `swarm-edge:metrics:${DEPLOYMENT}`;

describe.skipIf(skip)('feed on a Redis Cluster', () => {
  let cluster: TestRedisCluster;
  const instances: Instance[] = [];
  const healths: HealthRegistry[] = [];
  beforeAll(async () => {
    cluster = await startRedisCluster();
  }, 60_000);
  afterAll(async () => {
    for (const instance of instances) {
      await instance.feed.stop();
      await instance.app.close();
      instance.redis?.disconnect();
    }
    await cluster?.destroy();
  });
  const start = async () => {
    const health = new HealthRegistry();
    health.register(REDIS, { enabled: true, optional: true });
    healths.push(health);
    const redis = createRedis(cluster.url, { health, log });
    const instance = await startInstance({ redis });
    await redis.connect();
    instances.push(instance);
    return instance;
  };

  it('delivers across instances on sharded pub/sub, serves snapshots, and resumes after a master fails over', async () => {
    const [a, b] = [await start(), await start()];
    await waitFor('both connected', () => healths.every((h) => h.isUp(REDIS)), 15_000, 50);
    expect(a.redis!.isCluster).toBe(true);

    // b collects; its window reaches a's first subscriber through the stream on the cluster.
    b.feed.publishLocal(samples(DEPLOYMENT, 2));
    const client = connect(`${a.url}?token=${await token([DEPLOYMENT])}`);
    await client.opened;
    client.send({ type: 'subscribe', deploymentId: DEPLOYMENT });
    await waitFor('snapshot', () => client.frames.some((f) => f.type === 'snapshot'), 10_000, 20);
    const snapshot = client.frames.find((f) => f.type === 'snapshot')!;
    expect((snapshot.samples as Sample[]).length).toBe(2);

    const delivered = (count: number) =>
      waitFor(
        'samples from the other instance',
        async () => {
          b.feed.publishLocal(samples(DEPLOYMENT, 1));
          await new Promise((resolve) => setTimeout(resolve, 100));
          return client.frames.filter((f) => f.type === 'samples').length > count;
        },
        30_000,
        0,
      );
    await delivered(0);
    expect(a.feed.stats().remoteSamples).toBeGreaterThan(0);
    // Sharded: the channel lives on its slot's shard, not broadcast to every node.
    const shard = new Redis({ port: await cluster.masterOf(CHANNEL), host: '127.0.0.1', lazyConnect: true });
    shard.on('error', () => undefined);
    await shard.connect();
    const channels = (await shard.call('PUBSUB', 'SHARDNUMSUB', CHANNEL)) as [string, number];
    shard.disconnect();
    expect(Number(channels[1])).toBe(1);

    const failedAt = Date.now();
    const newMaster = await cluster.failOverSlotOf(CHANNEL);
    expect(newMaster).toBeGreaterThan(0);
    const before = client.frames.filter((f) => f.type === 'samples').length;
    await delivered(before);
    console.info(`feed delivery resumed ${Date.now() - failedAt} ms after the channel's master was killed`);
    client.socket.close();
  }, 120_000);
});
