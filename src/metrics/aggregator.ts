/**
 * Exact, non-overlapping 60 s windows aligned to the minute, per container. Each sample lands in
 * the window of its timestamp; counters are summed as per-sample deltas, so the windows of a
 * container add up to its counter increase over the whole period (no window counts a byte twice).
 * A window is finished once the clock is past its end plus a grace period for late samples.
 */
import type { Sample } from './sample.js';

export const WINDOW_MS = 60_000;

export interface AggregateRow {
  /** Window start, ms since epoch (a whole minute). */
  readonly bucket: number;
  readonly containerId: string;
  readonly deploymentId: string;
  readonly nodeId: string;
  readonly serviceId: string | null;
  /** Over samples with a CPU figure (the first sample of a container has none); null if none. */
  readonly cpuAvg: number | null;
  readonly cpuMax: number | null;
  readonly memoryAvg: number | null;
  readonly memoryMax: number | null;
  readonly netRxBytes: number;
  readonly netTxBytes: number;
  readonly blockReadBytes: number;
  readonly blockWriteBytes: number;
  readonly samples: number;
  /** Sums of the samples' increases (0 when the source reports none). */
  readonly cpuThrottledPeriods: number;
  readonly cpuThrottledSeconds: number;
  readonly oomKills: number;
  /** Exits not asked for in the window (container-exits.ts): the container's restarts. */
  readonly exits: number;
}

interface Accumulator {
  bucket: number;
  containerId: string;
  deploymentId: string;
  nodeId: string;
  serviceId: string | null;
  cpuSum: number;
  cpuCount: number;
  cpuMax: number | null;
  memSum: number;
  memCount: number;
  memMax: number | null;
  netRx: number;
  netTx: number;
  blkRead: number;
  blkWrite: number;
  samples: number;
  throttledPeriods: number;
  throttledSeconds: number;
  oomKills: number;
  exits: number;
}

export class Aggregator {
  private readonly open = new Map<string, Accumulator>();
  private lateSamples = 0;
  /** The latest `now` windows were taken at: windows ending before it minus grace are closed. */
  private watermark = -Infinity;

  constructor(private readonly options: { graceMs: number }) {}

  add(samples: readonly Sample[]): void {
    for (const sample of samples) {
      const acc = this.window(sample, sample.ts);
      acc.samples += 1;
      if (sample.cpuPercent !== null) {
        acc.cpuSum += sample.cpuPercent;
        acc.cpuCount += 1;
        acc.cpuMax = Math.max(acc.cpuMax ?? 0, sample.cpuPercent);
      }
      if (sample.memoryBytes !== null) {
        acc.memSum += sample.memoryBytes;
        acc.memCount += 1;
        acc.memMax = Math.max(acc.memMax ?? 0, sample.memoryBytes);
      }
      acc.netRx += sample.netRxDelta;
      acc.netTx += sample.netTxDelta;
      acc.blkRead += sample.blockReadDelta;
      acc.blkWrite += sample.blockWriteDelta;
      acc.throttledPeriods += sample.cpuThrottledPeriodsDelta ?? 0;
      acc.throttledSeconds += sample.cpuThrottledSecondsDelta ?? 0;
      acc.oomKills += sample.oomKillsDelta ?? 0;
    }
  }

  /**
   * A container's exit that was not asked for, counted in its window of `exit.at` (a window with
   * no sample when the container died before its first sample of the minute).
   */
  addExit(exit: {
    readonly containerId: string;
    readonly deploymentId: string;
    readonly nodeId: string;
    readonly serviceId: string | null;
    readonly at: number;
  }): void {
    this.window(exit, exit.at).exits += 1;
  }

  /** The open window of a container at `ts`, created when needed. */
  private window(
    owner: { containerId: string; deploymentId: string; nodeId: string; serviceId: string | null },
    ts: number,
  ): Accumulator {
    let bucket = Math.floor(ts / WINDOW_MS) * WINDOW_MS;
    if (bucket + WINDOW_MS + this.options.graceMs <= this.watermark) {
      // Its window was already written (a tick that ran very late): count it in the oldest
      // window still open, so no counter increase is lost and none is counted twice.
      this.lateSamples += 1;
      bucket = Math.floor((this.watermark - this.options.graceMs) / WINDOW_MS) * WINDOW_MS;
    }
    const key = `${owner.containerId}\u0000${bucket}`;
    let acc = this.open.get(key);
    if (acc === undefined) {
      acc = {
        bucket,
        containerId: owner.containerId,
        deploymentId: owner.deploymentId,
        nodeId: owner.nodeId,
        serviceId: owner.serviceId,
        cpuSum: 0,
        cpuCount: 0,
        cpuMax: null,
        memSum: 0,
        memCount: 0,
        memMax: null,
        netRx: 0,
        netTx: 0,
        blkRead: 0,
        blkWrite: 0,
        samples: 0,
        throttledPeriods: 0,
        throttledSeconds: 0,
        oomKills: 0,
        exits: 0,
      };
      this.open.set(key, acc);
    }
    return acc;
  }

  /** Removes and returns the windows finished at `now`, oldest first. */
  takeFinished(now: number): AggregateRow[] {
    this.watermark = Math.max(this.watermark, now);
    const rows: AggregateRow[] = [];
    for (const [key, acc] of this.open) {
      if (acc.bucket + WINDOW_MS + this.options.graceMs > now) continue;
      this.open.delete(key);
      rows.push(toRow(acc));
    }
    return rows.sort((a, b) => a.bucket - b.bucket || (a.containerId < b.containerId ? -1 : 1));
  }

  stats(): { openWindows: number; lateSamples: number } {
    return { openWindows: this.open.size, lateSamples: this.lateSamples };
  }
}

function toRow(acc: Accumulator): AggregateRow {
  return {
    bucket: acc.bucket,
    containerId: acc.containerId,
    deploymentId: acc.deploymentId,
    nodeId: acc.nodeId,
    serviceId: acc.serviceId,
    cpuAvg: acc.cpuCount > 0 ? Math.round((acc.cpuSum / acc.cpuCount) * 100) / 100 : null,
    cpuMax: acc.cpuMax,
    memoryAvg: acc.memCount > 0 ? Math.round(acc.memSum / acc.memCount) : null,
    memoryMax: acc.memMax,
    netRxBytes: acc.netRx,
    netTxBytes: acc.netTx,
    blockReadBytes: acc.blkRead,
    blockWriteBytes: acc.blkWrite,
    samples: acc.samples,
    cpuThrottledPeriods: acc.throttledPeriods,
    cpuThrottledSeconds: Math.round(acc.throttledSeconds * 1e6) / 1e6,
    oomKills: acc.oomKills,
    exits: acc.exits,
  };
}
