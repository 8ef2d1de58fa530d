import { describe, expect, it } from 'vitest';
import {
  HostFileError,
  parseDiskstats,
  parseLoadavg,
  parseMeminfo,
  parseNetDev,
  parseProcStat,
} from './host-parsers.js';

describe('host file parsers', () => {
  it('reads the aggregate CPU line: busy excludes idle and iowait, guests are inside user', () => {
    const stat =
      'cpu  100 5 50 800 20 3 2 1 40 0\ncpu0 50 2 25 400 10 1 1 0 20 0\ncpu1 50 3 25 400 10 2 1 1 20 0\nintr 1\n';
    expect(parseProcStat(stat)).toEqual({ busy: 161, total: 981, cpus: 2 });
    expect(() => parseProcStat('intr 1\n')).toThrow(HostFileError);
    expect(() => parseProcStat('cpu  a b c d\n')).toThrow(/unreadable/);
  });
  it('reads load averages and memory in bytes, and names what is missing', () => {
    expect(parseLoadavg('0.52 0.58 0.59 1/467 1234\n')).toEqual({ load1: 0.52, load5: 0.58, load15: 0.59 });
    expect(() => parseLoadavg('')).toThrow(HostFileError);
    const meminfo =
      'MemTotal:       16000 kB\nMemFree:  100 kB\nMemAvailable:   8000 kB\nSwapTotal: 2000 kB\nSwapFree: 500 kB\n';
    expect(parseMeminfo(meminfo)).toEqual({
      totalBytes: 16000 * 1024,
      availableBytes: 8000 * 1024,
      swapTotalBytes: 2000 * 1024,
      swapFreeBytes: 500 * 1024,
    });
    expect(() => parseMeminfo('MemTotal: 1 kB\n')).toThrow(/MemAvailable/);
  });
  it('sums whole physical disks only, in 512-byte sectors', () => {
    const diskstats = [
      '   8       0 sda 100 0 2000 0 50 0 4000 0 0 0 0',
      '   8       1 sda1 100 0 2000 0 50 0 4000 0 0 0 0',
      ' 259       0 nvme0n1 10 0 10 0 10 0 30 0 0 0 0',
      ' 259       1 nvme0n1p1 10 0 10 0 10 0 30 0 0 0 0',
      ' 253       0 dm-0 9 9 9 9 9 9 9 9 9 9 9',
      '   7       0 loop0 9 9 9 9 9 9 9 9 9 9 9',
    ].join('\n');
    expect(parseDiskstats(diskstats)).toEqual({
      readBytes: 2010 * 512,
      writtenBytes: 4030 * 512,
      devices: ['sda', 'nvme0n1'],
    });
  });
  it("sums the host's own interfaces, not loopback, veth pairs, bridges or overlays", () => {
    const netdev = [
      'Inter-|   Receive                                                |  Transmit',
      ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed',
      '    lo: 999 1 0 0 0 0 0 0 999 1 0 0 0 0 0 0',
      '  eth0: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0',
      '  ens5: 10 1 0 0 0 0 0 0 20 2 0 0 0 0 0 0',
      'veth12ab: 5 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0',
      'docker0: 5 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0',
      'br-1234: 5 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0',
      'docker_gwbridge: 5 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0',
    ].join('\n');
    expect(parseNetDev(netdev)).toEqual({ rxBytes: 1010, txBytes: 2020, interfaces: ['eth0', 'ens5'] });
    expect(() => parseNetDev('garbage')).toThrow(HostFileError);
  });
});
