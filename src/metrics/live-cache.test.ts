import { describe, expect, it } from 'vitest';
import { LiveCache, SAMPLE_BYTES } from './live-cache.js';
import type { Sample } from './sample.js';

const sample = (containerId: string, deploymentId: string, ts: number) => ({ containerId, deploymentId, ts }) as unknown as Sample;

describe('LiveCache', () => {
  it('keeps the recent window per container and answers snapshots by deployment', () => {
    const cache = new LiveCache({ windowMs: 30_000, maxContainers: 100, maxBytes: 1_000_000 });
    for (let ts = 0; ts <= 60_000; ts += 5_000) cache.add([sample('c1', 'dep-a', ts), sample('c2', 'dep-b', ts)]);
    const snapshot = cache.snapshot('dep-a');
    expect(snapshot.map((s) => s.ts)).toEqual([35_000, 40_000, 45_000, 50_000, 55_000, 60_000]);
    expect(cache.latest('dep-b').map((s) => s.ts)).toEqual([60_000]);
    expect(cache.snapshot('dep-unknown')).toEqual([]);
  });

  it('stays within its byte bound, evicting the least recently sampled containers', () => {
    const cache = new LiveCache({ windowMs: 3_600_000, maxContainers: 10_000, maxBytes: 50 * SAMPLE_BYTES });
    for (let i = 0; i < 100; i++) cache.add([sample(`c${i}`, `dep-${i % 3}`, 1_000), sample(`c${i}`, `dep-${i % 3}`, 2_000)]);
    const stats = cache.stats();
    expect(stats.bytes).toBeLessThanOrEqual(50 * SAMPLE_BYTES);
    expect(stats.containers).toBe(25);
    expect(cache.snapshot('dep-0').every((s) => Number(s.containerId.slice(1)) >= 75)).toBe(true);
  });

  it('stays within its entry bound', () => {
    const cache = new LiveCache({ windowMs: 3_600_000, maxContainers: 10, maxBytes: 1_000_000 });
    for (let i = 0; i < 50; i++) cache.add([sample(`c${i}`, 'dep', 1)]);
    expect(cache.stats().containers).toBe(10);
    expect(cache.snapshot('dep')).toHaveLength(10);
  });

  it('forgets a container that has not been sampled for a whole window', () => {
    // lru-cache takes a start time of 0 for "no TTL": the clock starts later.
    const clock = { now: 1_000_000 };
    const cache = new LiveCache({ windowMs: 30_000, maxContainers: 100, maxBytes: 1_000_000, now: () => clock.now });
    cache.add([sample('gone', 'dep-a', 0), sample('stays', 'dep-a', 0), sample('other', 'dep-b', 0)]);
    for (clock.now = 1_005_000; clock.now <= 1_030_000; clock.now += 5_000) cache.add([sample('stays', 'dep-a', clock.now - 1_000_000)]);
    expect(cache.stats()).toMatchObject({ containers: 1, deployments: 1 });
    expect(cache.snapshot('dep-a').map((s) => s.containerId)).toEqual(Array(6).fill('stays'));
    expect(cache.snapshot('dep-b')).toEqual([]);
  });
});
