/**
 * Task starts announced through a real Redis: the announcer watches the harness swarm's
 * containers and announces each task once it serves; a router's listener receives exactly the
 * task's ids, and refuses forged messages on the same channel.
 */
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  TASK_SERVING_CHANNEL,
  TaskServingAnnouncer,
  TaskServingListener,
  type ServingClaim,
} from '../../src/discovery/task-serving-channel.js';
import { FeedBus, subscriberOf } from '../../src/redis/index.js';
import { missingTools, startRedis, startSwarm, waitFor, type TestRedis, type TestSwarm } from '../harness/index.js';

const skip = missingTools(['root', 'dockerd', 'docker', 'busybox', 'redis-server']);

describe.skipIf(skip)('task starts announced through Redis', () => {
  let swarm: TestSwarm;
  let redis: TestRedis;
  let pub: Redis;
  let routerRedis: Redis;
  let announcer: TaskServingAnnouncer;
  let listener: TaskServingListener;
  const claims: ServingClaim[] = [];
  const log = pino({ level: 'silent' });

  beforeAll(async () => {
    [swarm, redis] = await Promise.all([startSwarm(), startRedis()]);
    pub = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    routerRedis = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    announcer = new TaskServingAnnouncer({ docker: swarm.docker, redis: pub, log });
    listener = new TaskServingListener({
      bus: new FeedBus(routerRedis, subscriberOf(routerRedis, 'test-task-serving', log)),
      log,
      onClaim: (claim) => claims.push(claim),
    });
    listener.start();
    announcer.start();
    await waitFor('announcer watching', () => Promise.resolve(announcer.stats().events.connected), 30_000, 50);
    await waitFor(
      'listener subscribed',
      async () => ((await pub.pubsub('NUMSUB', TASK_SERVING_CHANNEL)) as [string, number])[1] === 1,
      30_000,
      50,
    );
  }, 120_000);
  afterAll(async () => {
    announcer?.stop();
    listener?.stop();
    pub?.disconnect();
    routerRedis?.disconnect();
    await Promise.all([swarm?.destroy(), redis?.destroy()]);
  });

  it('announces each started task with its own ids, once healthy when it has a healthcheck', async () => {
    await swarm.docker.createService({
      Name: 'announced',
      TaskTemplate: {
        ContainerSpec: {
          Image: swarm.image,
          Command: ['sh', '-c', 'sleep 2; touch /tmp/ready; while true; do sleep 3600 & wait $!; done'],
          // The API's name (dockerode's types spell it HealthCheck).
          ...{ Healthcheck: { Test: ['CMD', 'sh', '-c', 'test -f /tmp/ready'], Interval: 500_000_000, Retries: 10 } },
        },
      },
      Mode: { Replicated: { Replicas: 2 } },
    });
    const startedAt = Date.now();
    await waitFor('two announcements', () => Promise.resolve(claims.length >= 2), 60_000, 50);
    // Not before the container was healthy: it creates its marker 2 s after starting.
    expect(Date.now() - startedAt).toBeGreaterThan(2_000);
    const tasks = (await swarm.docker.listTasks({ filters: { service: ['announced'] } })) as Array<{
      ID: string;
      ServiceID: string;
      NodeID: string;
      Status: { ContainerStatus?: { ContainerID?: string } };
    }>;
    expect(claims.map((c) => c.taskId).sort()).toEqual(tasks.map((t) => t.ID).sort());
    for (const claim of claims) {
      const task = tasks.find((t) => t.ID === claim.taskId)!;
      expect(claim).toEqual({
        taskId: task.ID,
        serviceId: task.ServiceID,
        nodeId: task.NodeID,
        containerId: task.Status.ContainerStatus?.ContainerID,
      });
    }
    expect(announcer.stats()).toMatchObject({ announced: 2, failed: 0 });
  }, 120_000);

  it('refuses forged, stale and oversized messages on the channel, and goes on receiving', async () => {
    const before = listener.stats();
    const good = JSON.parse(
      JSON.stringify({
        v: 1,
        task: 'a'.repeat(25),
        service: 'b'.repeat(25),
        node: 'c'.repeat(25),
        container: 'd'.repeat(64),
        at: Date.now(),
      }),
    ) as Record<string, unknown>;
    for (const forged of [
      'x',
      JSON.stringify({ ...good, ip: '10.6.6.6' }),
      JSON.stringify({ ...good, at: Date.now() - 120_000 }),
      JSON.stringify({ ...good, task: '../../etc' }),
      `{"a":${'['.repeat(5_000)}${']'.repeat(5_000)}}`,
    ])
      await pub.publish(TASK_SERVING_CHANNEL, forged);
    await pub.publish(TASK_SERVING_CHANNEL, JSON.stringify(good));
    await waitFor('all received', () => Promise.resolve(listener.stats().received === before.received + 6), 10_000, 20);
    expect(listener.stats().refused).toBe(before.refused + 5);
    expect(claims.at(-1)).toMatchObject({ taskId: 'a'.repeat(25) });
  });
});
