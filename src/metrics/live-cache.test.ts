import { describe, expect, it } from 'vitest';
import { LiveCache, SAMPLE_BYTES } from './live-cache.js';
import type { Sample } from './sample.js';

const sample = (containerId: string, deploymentId: string, ts: number) =>
  ({ containerId, deploymentId, ts, nodeId: null, serviceId: null, taskId: null }) as unknown as Sample;

describe('LiveCache', () => {
  it('keeps the recent window per container and answers snapshots by deployment', () => {
    const wall = { now: 0 };
    const cache = new LiveCache({
      windowMs: 30_000,
      maxContainers: 100,
      maxBytes: 1_000_000,
      wallClock: () => wall.now,
    });
    for (let ts = 0; ts <= 60_000; ts += 5_000) {
      wall.now = ts;
      cache.add([sample('c1', 'dep-a', ts), sample('c2', 'dep-b', ts)]);
    }
    const snapshot = cache.snapshot('dep-a');
    expect(snapshot.map((s) => s.ts)).toEqual([35_000, 40_000, 45_000, 50_000, 55_000, 60_000]);
    expect(cache.latest('dep-b').map((s) => s.ts)).toEqual([60_000]);
    expect(cache.snapshot('dep-unknown')).toEqual([]);
  });

  it('stays within its byte bound, evicting the least recently sampled containers', () => {
    const cache = new LiveCache({
      windowMs: 3_600_000,
      maxContainers: 10_000,
      maxBytes: 50 * (SAMPLE_BYTES + 2 * 'c00dep-0'.length),
      wallClock: () => 2_000,
    });
    for (let i = 0; i < 100; i++)
      cache.add([sample(`c${i}`, `dep-${i % 3}`, 1_000), sample(`c${i}`, `dep-${i % 3}`, 2_000)]);
    const stats = cache.stats();
    expect(stats.bytes).toBeLessThanOrEqual(50 * (SAMPLE_BYTES + 2 * 'c00dep-0'.length));
    expect(stats.containers).toBe(25);
    expect(cache.snapshot('dep-0').every((s) => Number(s.containerId.slice(1)) >= 75)).toBe(true);
  });

  it('stays within its entry bound', () => {
    const cache = new LiveCache({
      windowMs: 3_600_000,
      maxContainers: 10,
      maxBytes: 1_000_000,
      wallClock: () => 2_000,
    });
    for (let i = 0; i < 50; i++) cache.add([sample(`c${i}`, 'dep', 1)]);
    expect(cache.stats().containers).toBe(10);
    expect(cache.snapshot('dep')).toHaveLength(10);
  });

  it('forgets a container that has not been sampled for a whole window', () => {
    // lru-cache takes a start time of 0 for "no TTL": the clock starts later.
    const clock = { now: 1_000_000 };
    const cache = new LiveCache({
      windowMs: 30_000,
      maxContainers: 100,
      maxBytes: 1_000_000,
      now: () => clock.now,
      wallClock: () => clock.now - 1_000_000,
    });
    cache.add([sample('gone', 'dep-a', 0), sample('stays', 'dep-a', 0), sample('other', 'dep-b', 0)]);
    for (clock.now = 1_005_000; clock.now <= 1_030_000; clock.now += 5_000)
      cache.add([sample('stays', 'dep-a', clock.now - 1_000_000)]);
    expect(cache.stats()).toMatchObject({ containers: 1, deployments: 1 });
    expect(cache.snapshot('dep-a').map((s) => s.containerId)).toEqual(Array(6).fill('stays'));
    expect(cache.snapshot('dep-b')).toEqual([]);
  });

  it('keeps the window relative to the local clock: a sample from a skewed clock neither enters nor cuts the history', () => {
    const wall = { now: 1_000_000 };
    const cache = new LiveCache({
      windowMs: 300_000,
      maxContainers: 100,
      maxBytes: 1_000_000,
      wallClock: () => wall.now,
    });
    for (let ts = 800_000; ts <= 1_000_000; ts += 5_000) cache.add([sample('c1', 'dep-a', ts)]);
    const before = cache.snapshot('dep-a').length;
    cache.add([sample('c1', 'dep-a', wall.now + 600_000)]);
    expect(cache.snapshot('dep-a')).toHaveLength(before);
    expect(cache.stats().refusedFuture).toBe(1);
  });

  it('counts the strings a sample holds, so large samples cannot slip past the byte bound', () => {
    const cache = new LiveCache({
      windowMs: 300_000,
      maxContainers: 1_000,
      maxBytes: 1_048_576,
      wallClock: () => 10_000,
    });
    const huge = (i: number) =>
      ({ ...sample(`c${i}`, 'dep-a', 5_000), nodeId: 'n'.repeat(100_000) }) as unknown as Sample;
    for (let i = 0; i < 300; i++) cache.add([huge(i)]);
    expect(cache.stats().bytes).toBeLessThanOrEqual(1_048_576);
    expect(cache.stats().containers).toBeLessThanOrEqual(6);
  });
});
