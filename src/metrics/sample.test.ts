import { describe, expect, it } from 'vitest';
import { counterDelta, cpuPercent, toSample, type ContainerRef, type RawStats } from './sample.js';

const ref: ContainerRef = {
  containerId: 'c'.repeat(64),
  deploymentId: 'dep-1',
  nodeId: 'n1',
  serviceId: 's1',
  taskId: 't1',
  name: 'web',
};
const raw = (at: number, overrides: Partial<RawStats> = {}): RawStats => ({
  at,
  cpuNs: 0,
  systemCpuNs: 0,
  onlineCpus: 2,
  memoryBytes: 100,
  memoryLimitBytes: 1000,
  netRxBytes: 0,
  netTxBytes: 0,
  blockReadBytes: 0,
  blockWriteBytes: 0,
  pids: 1,
  ...overrides,
});

describe('samples', () => {
  it('computes CPU with the docker CLI formula against the previous sample', () => {
    // 1 s of wall time on 2 CPUs = 2e9 ns of system time; the container used 0.5e9 ns: 50 % of one CPU.
    const a = raw(0, { cpuNs: 1e9, systemCpuNs: 10e9 });
    const b = raw(1000, { cpuNs: 1.5e9, systemCpuNs: 12e9 });
    expect(cpuPercent(a, b)).toBe(50);
    expect(cpuPercent(undefined, b)).toBeNull();
    expect(cpuPercent(a, raw(1000, { cpuNs: 1.5e9, systemCpuNs: 10e9 }))).toBe(0);
  });

  it('never reports negative or huge values across a counter reset', () => {
    expect(counterDelta(5_000, 7_000)).toBe(2_000);
    expect(counterDelta(5_000_000, 300)).toBe(300);
    const before = raw(0, { cpuNs: 9e9, systemCpuNs: 10e9, netRxBytes: 5e6 });
    const afterRestart = raw(5000, { cpuNs: 1e8, systemCpuNs: 20e9, netRxBytes: 1_000 });
    const sample = toSample(ref, before, afterRestart);
    expect(sample.cpuPercent).toBeNull();
    expect(sample.netRxDelta).toBe(1_000);
    expect(sample.netRxRate).toBe(200);
  });

  it('gives deltas of 0 and no rates on the first sample', () => {
    const sample = toSample(ref, undefined, raw(0, { netRxBytes: 1e9 }));
    expect(sample).toMatchObject({
      cpuPercent: null,
      netRxDelta: 0,
      netRxRate: null,
      netRxBytes: 1e9,
      memoryBytes: 100,
    });
  });

  it('caps CPU at the number of CPUs', () => {
    expect(cpuPercent(raw(0, { cpuNs: 0, systemCpuNs: 0 }), raw(1000, { cpuNs: 10e9, systemCpuNs: 1e9 }))).toBe(200);
  });
});
