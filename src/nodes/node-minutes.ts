/**
 * This node's exact 60 s windows, from the host samples: each sample goes to the minute its
 * timestamp falls in. Gauges (CPU, memory, load, disk space, running containers) are averaged and
 * their peaks kept; byte counters (disk I/O, network) are summed as increments between
 * consecutive samples, credited to the minute of the later one, so the stored minutes of a node
 * add up exactly to its counters' increase (a counter that goes down, a reboot or a disk gone,
 * credits nothing and starts again from the new value).
 *
 * A minute is finished once a sample of a later minute arrived, or `graceMs` after its end.
 */
import type { HostSample } from './host-sampler.js';
import type { Running } from './node-usage.js';

const MINUTE = 60_000;

export interface NodeMinuteRow {
  readonly bucket: number;
  readonly nodeId: string;
  readonly cpuAvg: number | null;
  readonly cpuMax: number | null;
  readonly load1Avg: number | null;
  readonly load1Max: number | null;
  readonly memoryTotal: number | null;
  readonly memoryUsedAvg: number | null;
  readonly memoryUsedMax: number | null;
  readonly swapUsedMax: number | null;
  /** The first configured mount point (NODE_DISK_PATHS), as last read in the minute. */
  readonly diskUsed: number | null;
  readonly diskTotal: number | null;
  readonly diskReadBytes: number;
  readonly diskWriteBytes: number;
  readonly netRxBytes: number;
  readonly netTxBytes: number;
  readonly runningContainersMax: number | null;
  readonly runningDeploymentsMax: number | null;
  readonly samples: number;
}

type Counter = 'diskReadBytes' | 'diskWrittenBytes' | 'netRxBytes' | 'netTxBytes';
const COUNTERS: readonly Counter[] = ['diskReadBytes', 'diskWrittenBytes', 'netRxBytes', 'netTxBytes'];

class Mean {
  private sum = 0;
  private count = 0;
  max: number | null = null;
  add(value: number | null | undefined): void {
    if (value === null || value === undefined || !Number.isFinite(value)) return;
    this.sum += value;
    this.count += 1;
    if (this.max === null || value > this.max) this.max = value;
  }
  get mean(): number | null {
    return this.count === 0 ? null : this.sum / this.count;
  }
}

interface Window {
  readonly bucket: number;
  readonly cpu: Mean;
  readonly load1: Mean;
  readonly memoryUsed: Mean;
  readonly swapUsed: Mean;
  readonly containers: Mean;
  readonly deployments: Mean;
  memoryTotal: number | null;
  diskUsed: number | null;
  diskTotal: number | null;
  readonly increments: Record<Counter, number>;
  samples: number;
}

export class NodeMinutes {
  private readonly open = new Map<number, Window>();
  private previous: Partial<Record<Counter, number>> = {};
  private lastTs = -Infinity;

  constructor(private readonly options: { graceMs: number }) {}

  add(sample: HostSample, running: Running | undefined): void {
    // A clock stepped back: the minute it lands in may already be written; the increments go on.
    if (sample.ts <= this.lastTs) return;
    this.lastTs = sample.ts;
    const bucket = Math.floor(sample.ts / MINUTE) * MINUTE;
    let w = this.open.get(bucket);
    if (!w) {
      w = {
        bucket,
        cpu: new Mean(),
        load1: new Mean(),
        memoryUsed: new Mean(),
        swapUsed: new Mean(),
        containers: new Mean(),
        deployments: new Mean(),
        memoryTotal: null,
        diskUsed: null,
        diskTotal: null,
        increments: { diskReadBytes: 0, diskWrittenBytes: 0, netRxBytes: 0, netTxBytes: 0 },
        samples: 0,
      };
      this.open.set(bucket, w);
    }
    w.samples += 1;
    w.cpu.add(sample.cpuPercent);
    w.load1.add(sample.load1);
    w.memoryUsed.add(sample.memoryUsedBytes);
    w.swapUsed.add(sample.swapUsedBytes);
    w.containers.add(running?.containers);
    w.deployments.add(running?.deployments);
    if (sample.memoryTotalBytes !== null) w.memoryTotal = sample.memoryTotalBytes;
    const disk = sample.disks[0];
    if (disk) {
      w.diskUsed = disk.usedBytes;
      w.diskTotal = disk.totalBytes;
    }
    for (const counter of COUNTERS) {
      const value = sample[counter];
      if (value === null) continue; // unreadable this time: the increment lands when it reads again
      const before = this.previous[counter];
      if (before !== undefined && value >= before) w.increments[counter] += value - before;
      this.previous[counter] = value;
    }
  }

  /** Rows of the minutes finished by `now` (or by a later sample), oldest first. */
  takeFinished(nodeId: string, now: number): NodeMinuteRow[] {
    const rows: NodeMinuteRow[] = [];
    const newest = Math.floor(this.lastTs / MINUTE) * MINUTE;
    for (const [bucket, w] of [...this.open].sort(([a], [b]) => a - b)) {
      if (bucket >= newest && bucket + MINUTE + this.options.graceMs > now) continue;
      this.open.delete(bucket);
      rows.push({
        bucket,
        nodeId,
        cpuAvg: round(w.cpu.mean),
        cpuMax: round(w.cpu.max),
        load1Avg: round(w.load1.mean),
        load1Max: w.load1.max,
        memoryTotal: w.memoryTotal,
        memoryUsedAvg: whole(w.memoryUsed.mean),
        memoryUsedMax: w.memoryUsed.max,
        swapUsedMax: w.swapUsed.max,
        diskUsed: w.diskUsed,
        diskTotal: w.diskTotal,
        diskReadBytes: w.increments.diskReadBytes,
        diskWriteBytes: w.increments.diskWrittenBytes,
        netRxBytes: w.increments.netRxBytes,
        netTxBytes: w.increments.netTxBytes,
        runningContainersMax: w.containers.max,
        runningDeploymentsMax: w.deployments.max,
        samples: w.samples,
      });
    }
    return rows;
  }
}

function round(value: number | null): number | null {
  return value === null ? null : Math.round(value * 1000) / 1000;
}

function whole(value: number | null): number | null {
  return value === null ? null : Math.round(value);
}
