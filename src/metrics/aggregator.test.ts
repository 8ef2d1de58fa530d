import { describe, expect, it } from 'vitest';
import { Aggregator, WINDOW_MS } from './aggregator.js';
import { toSample, type RawStats, type Sample } from './sample.js';

const ref = {
  containerId: 'a'.repeat(64),
  deploymentId: 'dep-1',
  nodeId: 'n1',
  serviceId: undefined,
  taskId: undefined,
  name: 'x',
};
const T0 = Date.UTC(2026, 10, 22, 12, 0, 0);

/** Samples every 5 s from T0 for `seconds`, with counters growing irregularly and one reset. */
function series(seconds: number): Sample[] {
  const samples: Sample[] = [];
  let previous: RawStats | undefined;
  let rx = 0;
  for (let t = 0; t <= seconds; t += 5) {
    rx = t === 200 ? 1_000 : rx + 1_000 + ((t * 37) % 500); // restarted at t=200
    const raw: RawStats = {
      at: T0 + t * 1000,
      cpuNs: t * 1e8,
      systemCpuNs: t * 2e9,
      onlineCpus: 2,
      memoryBytes: 1000 + t,
      memoryLimitBytes: 1e6,
      netRxBytes: rx,
      netTxBytes: 0,
      blockReadBytes: 0,
      blockWriteBytes: t * 10,
      pids: 1,
    };
    samples.push(toSample(ref, previous, raw));
    previous = raw;
  }
  return samples;
}

describe('Aggregator', () => {
  it('writes exact, non-overlapping minute windows whose sums equal the counter increase', () => {
    const samples = series(300);
    const aggregator = new Aggregator({ graceMs: 7_000 });
    for (const s of samples) aggregator.add([s]);
    const rows = aggregator.takeFinished(T0 + 300_000 + 7_000);
    expect(rows.map((r) => r.bucket - T0)).toEqual([0, 60_000, 120_000, 180_000, 240_000]);
    expect(rows.every((r) => r.samples === 12)).toBe(true);
    const total = samples.reduce((sum, s) => sum + s.netRxDelta, 0);
    const windowed =
      rows.reduce((sum, r) => sum + r.netRxBytes, 0) +
      aggregator.takeFinished(T0 + 400_000).reduce((sum, r) => sum + r.netRxBytes, 0);
    expect(windowed).toBe(total);
    expect(rows[0]!.cpuAvg).toBe(10);
    expect(rows[0]!.memoryMax).toBe(1055);
  });

  it('keeps windows open until the grace period after their end has passed', () => {
    const aggregator = new Aggregator({ graceMs: 7_000 });
    aggregator.add(series(65));
    expect(aggregator.takeFinished(T0 + WINDOW_MS + 6_000)).toEqual([]);
    expect(aggregator.takeFinished(T0 + WINDOW_MS + 7_000)).toHaveLength(1);
  });

  it('counts a late sample in the oldest open window instead of writing its closed window twice', () => {
    const aggregator = new Aggregator({ graceMs: 7_000 });
    const samples = series(130);
    aggregator.add(samples.slice(0, 11));
    const first = aggregator.takeFinished(T0 + 70_000);
    aggregator.add(samples.slice(11));
    const rest = aggregator.takeFinished(T0 + 400_000);
    const buckets = [...first, ...rest].map((r) => r.bucket);
    expect(new Set(buckets).size).toBe(buckets.length);
    expect(aggregator.stats().lateSamples).toBe(1);
    const total = samples.reduce((sum, s) => sum + s.netRxDelta, 0);
    expect([...first, ...rest].reduce((sum, r) => sum + r.netRxBytes, 0)).toBe(total);
  });
});
