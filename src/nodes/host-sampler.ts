/**
 * The node's own health, every interval: CPU (of the whole host, from /proc/stat), load averages,
 * memory and swap, disk I/O of the whole physical disks and network traffic of the host's own
 * interfaces (from PID 1's network namespace: `/proc/net` would be this process's, a container's),
 * and the space of configured mount points (statfs).
 *
 * Each part is read on its own: a file that is missing or unreadable (a PROC_ROOT without
 * diskstats, a mount point gone) leaves its figures null, is reported once (until it reads again)
 * and the other parts go on. procfs files are read with pread on descriptors kept open, as the
 * cgroup source does (kernel-files.ts); statfs goes through the thread pool, since a hung network
 * mount must not stall the event loop.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import path from 'node:path';
import { errorMessage } from '../lib/errors.js';
import {
  parseDiskstats,
  parseLoadavg,
  parseMeminfo,
  parseNetDev,
  parseProcStat,
  type CpuTimes,
  type DiskIo,
  type NetworkIo,
} from './host-parsers.js';

export interface DiskSpace {
  readonly path: string;
  readonly totalBytes: number;
  readonly usedBytes: number;
  readonly availableBytes: number;
}

export interface HostSample {
  readonly ts: number;
  /** Busy share of all CPUs since the previous sample, 0-100; null on the first sample. */
  readonly cpuPercent: number | null;
  readonly cpus: number | null;
  readonly load1: number | null;
  readonly load5: number | null;
  readonly load15: number | null;
  readonly memoryTotalBytes: number | null;
  readonly memoryAvailableBytes: number | null;
  readonly memoryUsedBytes: number | null;
  readonly swapTotalBytes: number | null;
  readonly swapUsedBytes: number | null;
  readonly diskReadBytes: number | null;
  readonly diskWrittenBytes: number | null;
  readonly diskReadRate: number | null;
  readonly diskWriteRate: number | null;
  readonly netRxBytes: number | null;
  readonly netTxBytes: number | null;
  readonly netRxRate: number | null;
  readonly netTxRate: number | null;
  readonly disks: readonly DiskSpace[];
}

export interface HostProblem {
  readonly part: string;
  readonly error: string;
}

const MAX_FILE_BYTES = 4 * 1024 * 1024;

export class HostSampler {
  private readonly fds = new Map<string, number>();
  private buffer = Buffer.allocUnsafe(64 * 1024);
  private previous: { ts: number; cpu?: CpuTimes; disk?: DiskIo; net?: NetworkIo } | undefined;
  /** Parts failing now, with their error: each is reported once, when it starts failing. */
  private readonly failing = new Map<string, string>();

  constructor(
    private readonly options: { procRoot: string; diskPaths: readonly string[] },
    private readonly deps: { onProblem: (problem: HostProblem) => void; clock?: () => number },
  ) {}

  problems(): HostProblem[] {
    return [...this.failing].map(([part, error]) => ({ part, error }));
  }

  async sample(): Promise<HostSample> {
    const ts = (this.deps.clock ?? Date.now)();
    const proc = this.options.procRoot;
    const cpu = this.part('stat', () => parseProcStat(this.read(path.join(proc, 'stat'))));
    const load = this.part('loadavg', () => parseLoadavg(this.read(path.join(proc, 'loadavg'))));
    const memory = this.part('meminfo', () => parseMeminfo(this.read(path.join(proc, 'meminfo'))));
    const disk = this.part('diskstats', () => parseDiskstats(this.read(path.join(proc, 'diskstats'))));
    const net = this.part('net/dev', () => parseNetDev(this.read(path.join(proc, '1', 'net', 'dev'))));
    const disks = (
      await Promise.all(
        this.options.diskPaths.map(async (mount) => {
          try {
            const s = await statfs(mount);
            this.recovered(`statfs ${mount}`);
            return {
              path: mount,
              totalBytes: s.blocks * s.bsize,
              usedBytes: (s.blocks - s.bfree) * s.bsize,
              availableBytes: s.bavail * s.bsize,
            };
          } catch (error) {
            this.failed(`statfs ${mount}`, error);
            return undefined;
          }
        }),
      )
    ).filter((d): d is DiskSpace => d !== undefined);

    const previous = this.previous;
    const seconds = previous ? (ts - previous.ts) / 1000 : 0;
    const rate = (now: number | undefined, before: number | undefined) =>
      now !== undefined && before !== undefined && seconds > 0 && now >= before ? (now - before) / seconds : null;
    let cpuPercent: number | null = null;
    if (cpu && previous?.cpu) {
      const total = cpu.total - previous.cpu.total;
      const busy = cpu.busy - previous.cpu.busy;
      if (total > 0 && busy >= 0) cpuPercent = Math.min(100, (100 * busy) / total);
    }
    this.previous = { ts, cpu, disk, net };
    return {
      ts,
      cpuPercent,
      cpus: cpu?.cpus ?? null,
      load1: load?.load1 ?? null,
      load5: load?.load5 ?? null,
      load15: load?.load15 ?? null,
      memoryTotalBytes: memory?.totalBytes ?? null,
      memoryAvailableBytes: memory?.availableBytes ?? null,
      memoryUsedBytes: memory ? memory.totalBytes - memory.availableBytes : null,
      swapTotalBytes: memory?.swapTotalBytes ?? null,
      swapUsedBytes: memory ? memory.swapTotalBytes - memory.swapFreeBytes : null,
      diskReadBytes: disk?.readBytes ?? null,
      diskWrittenBytes: disk?.writtenBytes ?? null,
      diskReadRate: rate(disk?.readBytes, previous?.disk?.readBytes),
      diskWriteRate: rate(disk?.writtenBytes, previous?.disk?.writtenBytes),
      netRxBytes: net?.rxBytes ?? null,
      netTxBytes: net?.txBytes ?? null,
      netRxRate: rate(net?.rxBytes, previous?.net?.rxBytes),
      netTxRate: rate(net?.txBytes, previous?.net?.txBytes),
      disks,
    };
  }

  close(): void {
    for (const fd of this.fds.values()) {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    }
    this.fds.clear();
  }

  private part<T>(name: string, read: () => T): T | undefined {
    try {
      const value = read();
      this.recovered(name);
      return value;
    } catch (error) {
      this.failed(name, error);
      return undefined;
    }
  }

  private failed(part: string, error: unknown): void {
    const message = errorMessage(error);
    if (!this.failing.has(part)) this.deps.onProblem({ part, error: message });
    this.failing.set(part, message);
  }

  private recovered(part: string): void {
    this.failing.delete(part);
  }

  /** The whole file, from offset 0 (procfs generates it afresh), however long it is. */
  private read(file: string): string {
    let fd = this.fds.get(file);
    if (fd === undefined) {
      fd = openSync(file, 'r');
      this.fds.set(file, fd);
    }
    try {
      // Until a read returns nothing: procfs returns whole records, so a short read is not the end.
      let length = 0;
      for (;;) {
        if (length === this.buffer.length) {
          if (this.buffer.length >= MAX_FILE_BYTES) throw new Error(`${file} is over ${MAX_FILE_BYTES} bytes`);
          const grown = Buffer.allocUnsafe(this.buffer.length * 2);
          this.buffer.copy(grown, 0, 0, length);
          this.buffer = grown;
        }
        const n = readSync(fd, this.buffer, length, this.buffer.length - length, length);
        if (n === 0) break;
        length += n;
      }
      return this.buffer.toString('latin1', 0, length);
    } catch (error) {
      this.fds.delete(file);
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
      throw error;
    }
  }
}
