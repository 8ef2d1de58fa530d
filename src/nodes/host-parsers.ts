/**
 * The host's own figures from procfs, as pure functions of the files' text (the sampler reads
 * them). Each throws HostFileError naming what it could not find, so a changed kernel format is
 * reported rather than read as zeros.
 */

export class HostFileError extends Error {}

/** Jiffies of the aggregate `cpu` line of /proc/stat: busy (everything but idle and iowait) and total. */
export interface CpuTimes {
  readonly busy: number;
  readonly total: number;
  /** Logical CPUs (the `cpuN` lines). */
  readonly cpus: number;
}

export function parseProcStat(text: string): CpuTimes {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) throw new HostFileError('no aggregate cpu line in stat');
  // user nice system idle iowait irq softirq steal (guest and guest_nice are inside user and nice)
  const fields = line.trim().split(/\s+/).slice(1, 9).map(Number);
  if (fields.length < 4 || fields.some((f) => !Number.isFinite(f) || f < 0))
    throw new HostFileError(`unreadable cpu line in stat: ${JSON.stringify(line.slice(0, 120))}`);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
  const busy = user + nice + system + irq + softirq + steal;
  const cpus = text.split('\n').filter((l) => /^cpu\d+ /.test(l)).length;
  return { busy, total: busy + idle + iowait, cpus: Math.max(1, cpus) };
}

export interface LoadAverage {
  readonly load1: number;
  readonly load5: number;
  readonly load15: number;
}

export function parseLoadavg(text: string): LoadAverage {
  const [load1, load5, load15] = text.trim().split(/\s+/).slice(0, 3).map(Number);
  if (![load1, load5, load15].every((v) => v !== undefined && Number.isFinite(v) && v >= 0))
    throw new HostFileError(`unreadable loadavg: ${JSON.stringify(text.slice(0, 80))}`);
  return { load1: load1!, load5: load5!, load15: load15! };
}

export interface Memory {
  readonly totalBytes: number;
  readonly availableBytes: number;
  readonly swapTotalBytes: number;
  readonly swapFreeBytes: number;
}

export function parseMeminfo(text: string): Memory {
  const kb = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^(\w+):\s+(\d+)(?: kB)?$/.exec(line.trim());
    if (match) kb.set(match[1]!, Number(match[2]) * 1024);
  }
  const get = (key: string) => {
    const value = kb.get(key);
    if (value === undefined) throw new HostFileError(`no ${key} in meminfo`);
    return value;
  };
  return {
    totalBytes: get('MemTotal'),
    availableBytes: get('MemAvailable'),
    swapTotalBytes: kb.get('SwapTotal') ?? 0,
    swapFreeBytes: kb.get('SwapFree') ?? 0,
  };
}

/**
 * Whole physical disks only: partitions, device-mapper, md, loop and RAM devices are views of (or
 * on top of) them, and would count the same bytes twice.
 */
const WHOLE_DISK = /^(sd[a-z]+|vd[a-z]+|xvd[a-z]+|hd[a-z]+|nvme\d+n\d+|mmcblk\d+)$/;
/** diskstats counts 512-byte sectors whatever the device's own sector size. */
const SECTOR = 512;

export interface DiskIo {
  readonly readBytes: number;
  readonly writtenBytes: number;
  readonly devices: readonly string[];
}

export function parseDiskstats(text: string): DiskIo {
  let readBytes = 0;
  let writtenBytes = 0;
  const devices: string[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || !WHOLE_DISK.test(f[2]!)) continue;
    const read = Number(f[5]);
    const written = Number(f[9]);
    if (!Number.isFinite(read) || !Number.isFinite(written)) continue;
    readBytes += read * SECTOR;
    writtenBytes += written * SECTOR;
    devices.push(f[2]!);
  }
  return { readBytes, writtenBytes, devices };
}

/**
 * The host's own interfaces: loopback and the virtual ones containers and overlays add (veth
 * pairs, bridges, VXLAN) are left out, since container traffic crosses them and a physical one too.
 */
const VIRTUAL = /^(lo|veth|docker|br-|virbr|vxlan|cali|flannel|cni|kube|tunl|weave|vethwe|dummy)/;

export interface NetworkIo {
  readonly rxBytes: number;
  readonly txBytes: number;
  readonly interfaces: readonly string[];
}

export function parseNetDev(text: string): NetworkIo {
  let rxBytes = 0;
  let txBytes = 0;
  const interfaces: string[] = [];
  let header = false;
  for (const line of text.split('\n')) {
    if (line.includes('|')) {
      header = true;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon === -1) continue;
    const name = line.slice(0, colon).trim();
    const f = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/);
    if (f.length < 9 || VIRTUAL.test(name)) continue;
    const rx = Number(f[0]);
    const tx = Number(f[8]);
    if (!Number.isFinite(rx) || !Number.isFinite(tx)) continue;
    rxBytes += rx;
    txBytes += tx;
    interfaces.push(name);
  }
  if (!header) throw new HostFileError('net/dev has no header');
  return { rxBytes, txBytes, interfaces };
}
