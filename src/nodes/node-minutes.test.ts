import { describe, expect, it } from 'vitest';
import type { HostSample } from './host-sampler.js';
import { NodeMinutes } from './node-minutes.js';

const T0 = Date.UTC(2026, 11, 1, 10, 0, 0);

function host(ts: number, counters: number, extra: Partial<HostSample> = {}): HostSample {
  return {
    ts,
    cpuPercent: 50,
    cpus: 4,
    load1: 1,
    load5: 1,
    load15: 1,
    memoryTotalBytes: 1000,
    memoryAvailableBytes: 400,
    memoryUsedBytes: 600,
    swapTotalBytes: 0,
    swapUsedBytes: 0,
    diskReadBytes: counters,
    diskWrittenBytes: 2 * counters,
    diskReadRate: null,
    diskWriteRate: null,
    netRxBytes: 3 * counters,
    netTxBytes: 4 * counters,
    netRxRate: null,
    netTxRate: null,
    disks: [{ path: '/', totalBytes: 100, usedBytes: 40, availableBytes: 60 }],
    ...extra,
  };
}

describe('node minutes', () => {
  it("add up exactly to the counters' increase, minute by minute, across a reset", () => {
    const minutes = new NodeMinutes({ graceMs: 7_000 });
    let counter = 1_000_000;
    const increases: number[] = [];
    for (let i = 0; i < 60; i++) {
      // 5 s apart, with jitter; a reset (reboot) at i = 30: the counter starts again from 10.
      const ts = T0 + i * 5_000 + (i % 3) * 7;
      const step = 1_000 + i * 13;
      if (i === 30) counter = 10;
      else if (i > 0) {
        counter += step;
        increases.push(step);
      }
      minutes.add(host(ts, counter, { cpuPercent: i % 2 === 0 ? 20 : 80 }), { containers: i, deployments: 1 });
    }
    const rows = minutes.takeFinished('node-1', T0 + 10 * 60_000);
    expect(rows.map((r) => r.bucket)).toEqual([0, 1, 2, 3, 4].map((m) => T0 + m * 60_000));
    const total = increases.reduce((a, b) => a + b, 0);
    expect(rows.reduce((a, r) => a + r.diskReadBytes, 0)).toBe(total);
    expect(rows.reduce((a, r) => a + r.netTxBytes, 0)).toBe(4 * total);
    expect(rows.reduce((a, r) => a + r.samples, 0)).toBe(60);
    expect(rows[0]).toMatchObject({ nodeId: 'node-1', cpuAvg: 50, cpuMax: 80, memoryUsedMax: 600, diskUsed: 40 });
    expect(rows[0]!.runningContainersMax).toBe(11);
  });

  it('keeps the newest minute open until a later sample or the grace period, and ignores a clock stepped back', () => {
    const minutes = new NodeMinutes({ graceMs: 7_000 });
    minutes.add(host(T0 + 1_000, 10), undefined);
    minutes.add(host(T0 + 59_000, 20), undefined);
    expect(minutes.takeFinished('n', T0 + 60_000)).toEqual([]);
    minutes.add(host(T0 + 30_000, 5), undefined); // stepped back: ignored
    expect(minutes.takeFinished('n', T0 + 67_001)).toMatchObject([{ bucket: T0, samples: 2, diskReadBytes: 10 }]);
    minutes.add(host(T0 + 61_000, 25), undefined);
    minutes.add(host(T0 + 121_000, 26, { cpuPercent: null, memoryUsedBytes: null }), undefined);
    const [first, ...rest] = minutes.takeFinished('n', T0 + 121_000);
    expect(first).toMatchObject({ bucket: T0 + 60_000, diskReadBytes: 5 });
    expect(rest).toEqual([]);
    const last = minutes.takeFinished('n', T0 + 200_000);
    expect(last).toMatchObject([{ bucket: T0 + 120_000, cpuAvg: null, memoryUsedAvg: null, diskReadBytes: 1 }]);
  });
});
