/**
 * Reads container counters straight from the cgroup filesystem (v1 or v2) and the container's
 * /proc/<pid>/net/dev, as cAdvisor does: about 7 small files per container and no daemon round
 * trip. Reads are synchronous (a few µs each, far less than the overhead of async file I/O) in
 * chunks, yielding to the event loop between chunks so a large sweep never stalls the feed.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { RawStats } from '../sample.js';
import { KernelFiles } from './kernel-files.js';
import type { LocalContainer, StatsSource } from './stats-source.js';

export interface CgroupSourceOptions {
  /** Where the host's cgroup hierarchy is mounted (in a container: a bind mount of /sys/fs/cgroup). */
  readonly cgroupRoot: string;
  /** Where the host's /proc is mounted. */
  readonly procRoot: string;
  readonly chunkSize?: number;
  /** Throttling and OOM kills (cpu.stat, memory.events / memory.oom_control); default true. bench/collection.ts turns them off to measure their cost. */
  readonly extras?: boolean;
}

type CgroupVersion = 1 | 2;
const V1_CONTROLLERS = ['cpu', 'cpuacct', 'memory', 'blkio', 'pids'] as const;
type V1Controller = (typeof V1_CONTROLLERS)[number];

interface CgroupPaths {
  readonly version: CgroupVersion;
  readonly pid: number;
  /** v2: the one directory; v1: a directory per controller. */
  readonly dirs: Readonly<Record<V1Controller | 'unified', string | undefined>>;
  /** The extras' state (see readExtras): the last OOM kill count read, and whether a CPU quota is set. */
  oomKills?: number | undefined;
  oomSweep?: number;
  /** cgroup v1: the CPU quota per period, ns (0: none), when last looked at, and the last cpu.stat read. */
  quotaNs?: number;
  quotaSweep?: number;
  throttled?: { periods: number; ns: number; usageNs: number; sweep: number } | undefined;
  /** The extras' files, joined once (bench/collection.ts, busy case: +13 % became +7-11 %). */
  oomFile?: string | undefined;
  cpuStatFile?: string;
}

/**
 * How the extras stay cheap (bench/collection.ts, side by side with the sweep without them):
 * - OOM kills are read every OOM_EVERY sweeps per container (spread over sweeps by container), the
 *   last count carried in between: the count is cumulative, so each increase still lands in
 *   exactly one sample, at most OOM_EVERY ticks late;
 * - on cgroup v1, throttling (cpu.stat of the cpu controller) is read only for containers with a
 *   CPU quota (cpu.cfs_quota_us > 0, looked at again every QUOTA_EVERY sweeps): without one the
 *   kernel never throttles. And only when the container used at least one period's quota of CPU
 *   since the last read: a throttled period is one whose quota ran out, so fewer than one quota of
 *   CPU time means no new throttled period. (Throttled time still running from a period throttled
 *   before lands at the next read, which comes at least every QUOTA_EVERY sweeps: the counters are
 *   cumulative, so nothing is lost, only late.) On v2, cpu.stat is read anyway (it holds the usage).
 * - both files are searched for their two or three fields, not parsed into objects.
 */
const OOM_EVERY = 6;
const QUOTA_EVERY = 60;

export class CgroupStatsSource implements StatsSource {
  readonly name = 'cgroup' as const;
  readonly version: CgroupVersion;
  private readonly paths = new Map<string, CgroupPaths>();
  private sweeps = 0;
  private readonly files = new KernelFiles();
  private readonly chunkSize: number;
  private readonly hostMemoryBytes: number | undefined;
  private reads = 0;
  private failures = 0;

  constructor(private readonly options: CgroupSourceOptions) {
    this.version = existsSync(path.join(options.cgroupRoot, 'memory')) ? 1 : 2;
    this.chunkSize = options.chunkSize ?? 100;
    this.hostMemoryBytes = readMemTotal(options.procRoot);
  }

  /** Closes every descriptor this source keeps open. */
  close(): void {
    this.files.closeAll();
    this.paths.clear();
  }

  /** True when this machine's cgroup files can be read (STATS_SOURCE=auto picks cgroup then). */
  static available(options: CgroupSourceOptions): boolean {
    return (
      existsSync(path.join(options.procRoot, 'stat')) &&
      (existsSync(path.join(options.cgroupRoot, 'memory')) ||
        existsSync(path.join(options.cgroupRoot, 'cgroup.controllers')))
    );
  }

  stats(): Record<string, unknown> {
    return {
      version: this.version,
      reads: this.reads,
      failures: this.failures,
      knownContainers: this.paths.size,
      openFiles: this.files.open,
    };
  }

  async readAll(containers: readonly LocalContainer[]): Promise<Array<RawStats | Error>> {
    const results: Array<RawStats | Error> = [];
    this.sweeps += 1;
    const live = new Set(containers.map((c) => c.ref.containerId));
    for (const [id, paths] of this.paths) if (!live.has(id)) this.forget(id, paths);
    for (let i = 0; i < containers.length; i += this.chunkSize) {
      if (i > 0) await new Promise((resolve) => setImmediate(resolve));
      // One /proc/stat per chunk: every container of the chunk is read against the same clock.
      const system = parseProcStat(this.files.read(path.join(this.options.procRoot, 'stat')));
      for (const container of containers.slice(i, i + this.chunkSize)) {
        try {
          results.push(this.read(container, system));
          this.reads += 1;
        } catch (error) {
          this.failures += 1;
          // A container that went away between listing and reading, or a moved cgroup: look again next time.
          const paths = this.paths.get(container.ref.containerId);
          if (paths) this.forget(container.ref.containerId, paths);
          results.push(error instanceof Error ? error : new Error(String(error)));
        }
      }
    }
    return results;
  }

  private forget(id: string, paths: CgroupPaths): void {
    this.paths.delete(id);
    for (const dir of Object.values(paths.dirs)) if (dir) this.files.closeUnder(dir);
    if (paths.pid > 0) this.files.closeUnder(path.join(this.options.procRoot, String(paths.pid)) + path.sep);
  }

  private read(container: LocalContainer, system: { ns: number; cpus: number }): RawStats {
    const f = this.files;
    const readNumber = (file: string) => numberIn(f.read(file));
    const paths = this.pathsFor(container);
    const at = Date.now();
    const net =
      container.hostNetwork || container.pid <= 0
        ? undefined
        : optional(() => parseNetDev(f.read(path.join(this.options.procRoot, String(container.pid), 'net', 'dev'))));
    if (paths.version === 2) {
      const dir = paths.dirs.unified!;
      const cpuStat = keyValues(f.read(path.join(dir, 'cpu.stat')));
      const memStat = keyValues(f.read(path.join(dir, 'memory.stat')));
      const usage = readNumber(path.join(dir, 'memory.current'));
      const io = optional(() => parseIoStat(f.read(path.join(dir, 'io.stat'))));
      return {
        at,
        cpuNs: cpuStat.usage_usec === undefined ? undefined : cpuStat.usage_usec * 1000,
        systemCpuNs: system.ns,
        onlineCpus: system.cpus,
        memoryBytes: usage === undefined ? undefined : Math.max(0, usage - (memStat.inactive_file ?? 0)),
        memoryLimitBytes: this.limit(optional(() => readNumber(path.join(dir, 'memory.max')))),
        netRxBytes: net?.rx,
        netTxBytes: net?.tx,
        blockReadBytes: io?.read,
        blockWriteBytes: io?.write,
        pids: optional(() => readNumber(path.join(dir, 'pids.current'))),
        throttledPeriods: this.options.extras === false ? undefined : cpuStat.nr_throttled,
        throttledNs:
          this.options.extras === false || cpuStat.throttled_usec === undefined
            ? undefined
            : cpuStat.throttled_usec * 1000,
        oomKills: this.oomKills(paths, container, dir, 'memory.events'),
      };
    }
    const { cpu, cpuacct, memory, blkio, pids } = paths.dirs;
    const memStat = memory ? keyValues(f.read(path.join(memory, 'memory.stat'))) : {};
    const usage = memory ? readNumber(path.join(memory, 'memory.usage_in_bytes')) : undefined;
    const io = blkio
      ? optional(() => parseBlkio(f.read(path.join(blkio, 'blkio.throttle.io_service_bytes_recursive'))))
      : undefined;
    // cpu.stat is the cpu controller's (often mounted with cpuacct); oom_kill in memory.oom_control
    // needs Linux 4.13.
    const cpuNs = cpuacct ? readNumber(path.join(cpuacct, 'cpuacct.usage')) : undefined;
    const throttling = this.throttling(paths, cpu, cpuNs);
    return {
      at,
      cpuNs,
      systemCpuNs: system.ns,
      onlineCpus: system.cpus,
      memoryBytes: usage === undefined ? undefined : Math.max(0, usage - (memStat.total_inactive_file ?? 0)),
      memoryLimitBytes: memory
        ? this.limit(optional(() => readNumber(path.join(memory, 'memory.limit_in_bytes'))))
        : undefined,
      netRxBytes: net?.rx,
      netTxBytes: net?.tx,
      blockReadBytes: io?.read,
      blockWriteBytes: io?.write,
      pids: pids ? optional(() => readNumber(path.join(pids, 'pids.current'))) : undefined,
      throttledPeriods: throttling?.periods,
      throttledNs: throttling?.ns,
      oomKills: memory ? this.oomKills(paths, container, memory, 'memory.oom_control') : undefined,
    };
  }

  /** cgroup v1 throttling: 0 without a CPU quota (never throttled), else cpu.stat's counters. */
  private throttling(
    paths: CgroupPaths,
    cpu: string | undefined,
    usageNs: number | undefined,
  ): { periods: number; ns: number } | undefined {
    if (this.options.extras === false || cpu === undefined) return undefined;
    if (paths.quotaNs === undefined || this.sweeps - (paths.quotaSweep ?? 0) >= QUOTA_EVERY) {
      const quota = optional(() => numberIn(this.files.read(path.join(cpu, 'cpu.cfs_quota_us'))));
      paths.quotaNs = quota !== undefined && quota > 0 ? quota * 1000 : 0;
      paths.quotaSweep = this.sweeps;
    }
    if (paths.quotaNs === 0) return { periods: 0, ns: 0 };
    const last = paths.throttled;
    const idle =
      last !== undefined &&
      usageNs !== undefined &&
      usageNs >= last.usageNs &&
      usageNs - last.usageNs < paths.quotaNs &&
      this.sweeps - last.sweep < QUOTA_EVERY;
    // A fresh object of one shape every time: returning the carried state itself (another shape)
    // measured slower in bench/collection.ts (busy: +14-23 % against +7-11 %).
    if (idle) return { periods: last.periods, ns: last.ns };
    const file = (paths.cpuStatFile ??= path.join(cpu, 'cpu.stat'));
    const text = optional(() => this.files.read(file));
    const periods = text === undefined ? undefined : fieldOf(text, 'nr_throttled');
    const ns = text === undefined ? undefined : fieldOf(text, 'throttled_time');
    if (periods === undefined || ns === undefined) {
      paths.throttled = undefined;
      return undefined;
    }
    paths.throttled = { periods, ns, usageNs: usageNs ?? 0, sweep: this.sweeps };
    return { periods, ns };
  }

  /** The OOM kill count, read every OOM_EVERY sweeps (spread by container), carried in between. */
  private oomKills(paths: CgroupPaths, container: LocalContainer, dir: string, name: string): number | undefined {
    if (this.options.extras === false) return undefined;
    const due = paths.oomSweep === undefined || (this.sweeps + container.pid) % OOM_EVERY === 0;
    if (due) {
      paths.oomSweep = this.sweeps;
      const file = (paths.oomFile ??= path.join(dir, name));
      const text = optional(() => this.files.read(file));
      paths.oomKills = text === undefined ? undefined : fieldOf(text, 'oom_kill');
    }
    return paths.oomKills;
  }

  /** As the Docker daemon reports it: an unlimited container's limit is the host's memory. */
  private limit(value: number | undefined): number | undefined {
    if (value === undefined) return this.hostMemoryBytes;
    return this.hostMemoryBytes !== undefined ? Math.min(value, this.hostMemoryBytes) : value;
  }

  private pathsFor(container: LocalContainer): CgroupPaths {
    const id = container.ref.containerId;
    let paths = this.paths.get(id);
    if (paths && paths.pid === container.pid) return paths;
    // A restart keeps the id but not the PID (nor, with some drivers, the cgroup).
    if (paths) this.forget(id, paths);
    const fromProc =
      container.pid > 0
        ? readProcCgroup(path.join(this.options.procRoot, String(container.pid), 'cgroup'))
        : new Map<string, string>();
    // /proc/<pid>/cgroup is exact on the host; inside a container with its own cgroup namespace
    // it is relative, so the Docker drivers' usual places are tried as well.
    const guesses = [
      container.cgroupParent
        ? `${container.cgroupParent.startsWith('/') ? '' : '/'}${container.cgroupParent}/${id}`
        : undefined,
      `/docker/${id}`,
      `/system.slice/docker-${id}.scope`,
    ].filter((p): p is string => p !== undefined);
    const find = (root: string, fromProcPath: string | undefined) => {
      for (const candidate of [fromProcPath, ...guesses]) {
        if (candidate === undefined) continue;
        const dir = path.join(root, candidate);
        if (dir.startsWith(root) && existsSync(dir)) return dir;
      }
      return undefined;
    };
    if (this.version === 2) {
      const dir = find(this.options.cgroupRoot, fromProc.get(''));
      if (dir === undefined) throw new Error(`no cgroup v2 directory found for container ${id.slice(0, 12)}`);
      paths = {
        version: 2,
        pid: container.pid,
        dirs: {
          unified: dir,
          cpu: undefined,
          cpuacct: undefined,
          memory: undefined,
          blkio: undefined,
          pids: undefined,
        },
      };
    } else {
      const dirs: Record<string, string | undefined> = { unified: undefined };
      for (const controller of V1_CONTROLLERS) {
        const mount = controllerMount(this.options.cgroupRoot, controller);
        dirs[controller] = mount === undefined ? undefined : find(mount, fromProc.get(controller));
      }
      if (dirs.memory === undefined && dirs.cpuacct === undefined)
        throw new Error(`no cgroup v1 directories found for container ${id.slice(0, 12)}`);
      paths = { version: 1, pid: container.pid, dirs: dirs as CgroupPaths['dirs'] };
    }
    this.paths.set(id, paths);
    return paths;
  }
}

/** cpuacct may be mounted on its own or co-mounted as cpu,cpuacct. */
function controllerMount(root: string, controller: V1Controller): string | undefined {
  // cpu and cpuacct are mounted together on most distributions, apart on some.
  const names =
    controller === 'cpuacct' || controller === 'cpu' ? [controller, 'cpu,cpuacct', 'cpuacct,cpu'] : [controller];
  for (const name of names) {
    const dir = path.join(root, name);
    if (existsSync(dir)) return dir;
  }
  return undefined;
}

/** Controller → path from /proc/<pid>/cgroup ('' is the v2 unified hierarchy). */
export function parseProcCgroup(text: string): Map<string, string> {
  const result = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!match) continue;
    for (const controller of match[1]!.split(',')) result.set(controller.replace(/^name=/, ''), match[2]!);
  }
  return result;
}

function readProcCgroup(file: string): Map<string, string> {
  try {
    return parseProcCgroup(readFileSync(file, 'utf8'));
  } catch {
    return new Map();
  }
}

function numberIn(text: string): number | undefined {
  const trimmed = text.trim();
  if (trimmed === 'max') return undefined;
  const value = Number(trimmed);
  return trimmed !== '' && Number.isFinite(value) ? value : undefined;
}

/** A counter that cannot be read (a controller not enabled) is reported as unknown, not as a failure. */
function optional<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

/** The number after `name ` at the start of a line of a "key value" file, without parsing the rest. */
function fieldOf(text: string, name: string): number | undefined {
  let at = text.startsWith(`${name} `) ? 0 : text.indexOf(`\n${name} `);
  if (at === -1) return undefined;
  if (at > 0) at += 1;
  const end = text.indexOf('\n', at);
  const value = Number(text.slice(at + name.length + 1, end === -1 ? undefined : end));
  return Number.isFinite(value) ? value : undefined;
}

/** "key value" lines (memory.stat, cpu.stat). */
export function keyValues(text: string): Record<string, number> {
  const result: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const space = line.indexOf(' ');
    if (space > 0) result[line.slice(0, space)] = Number(line.slice(space + 1));
  }
  return result;
}

/** Sum of non-loopback interfaces, as Docker reports a container's network. */
export function parseNetDev(text: string): { rx: number; tx: number } {
  let rx = 0;
  let tx = 0;
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    if (line.slice(0, colon).trim() === 'lo') continue;
    const fields = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/);
    rx += Number(fields[0]);
    tx += Number(fields[8]);
  }
  return { rx, tx };
}

/** cgroup v1 blkio: "8:0 Read 4096" lines, summed over devices, as the docker CLI does. */
export function parseBlkio(text: string): { read: number; write: number } {
  let read = 0;
  let write = 0;
  for (const line of text.split('\n')) {
    const [, op, value] = line.trim().split(/\s+/);
    if (op === undefined || value === undefined) continue;
    const c = op[0];
    if (c === 'R' || c === 'r') read += Number(value);
    else if (c === 'W' || c === 'w') write += Number(value);
  }
  return { read, write };
}

/** cgroup v2 io.stat: "8:0 rbytes=1 wbytes=2 rios=..." lines. */
export function parseIoStat(text: string): { read: number; write: number } {
  let read = 0;
  let write = 0;
  for (const match of text.matchAll(/\b([rw])bytes=(\d+)/g)) {
    if (match[1] === 'r') read += Number(match[2]);
    else write += Number(match[2]);
  }
  return { read, write };
}

/** The docker daemon's system_cpu_usage: the first 7 fields of /proc/stat's cpu line, in ns. */
export function parseProcStat(text: string, clockTicks = 100): { ns: number; cpus: number } {
  const lines = text.split('\n');
  const fields = (lines[0] ?? '').trim().split(/\s+/).slice(1, 8).map(Number);
  const ticks = fields.reduce((a, b) => a + b, 0);
  const cpus = lines.filter((l) => /^cpu\d+ /.test(l)).length;
  return { ns: (ticks * 1e9) / clockTicks, cpus: Math.max(cpus, 1) };
}

function readMemTotal(procRoot: string): number | undefined {
  try {
    const match = /^MemTotal:\s+(\d+) kB/m.exec(readFileSync(path.join(procRoot, 'meminfo'), 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
