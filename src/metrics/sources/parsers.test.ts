import { describe, expect, it } from 'vitest';
import { keyValues, parseBlkio, parseIoStat, parseNetDev, parseProcCgroup, parseProcStat } from './cgroup-source.js';
import { parseDockerStats } from './docker-source.js';

describe('cgroup and proc parsers', () => {
  it('reads /proc/<pid>/cgroup for v1 and v2', () => {
    const v1 = parseProcCgroup(
      '12:pids:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n0::/docker/abc\n',
    );
    expect(v1.get('cpuacct')).toBe('/docker/abc');
    expect(v1.get('pids')).toBe('/docker/abc');
    expect(v1.get('systemd')).toBe('/docker/abc');
    expect(parseProcCgroup('0::/system.slice/docker-abc.scope\n').get('')).toBe('/system.slice/docker-abc.scope');
  });

  it('sums network interfaces except loopback', () => {
    const text = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  999999      10    0    0    0     0          0         0   999999      10    0    0    0     0       0          0
  eth0:    1000      10    0    0    0     0          0         0     2000      20    0    0    0     0       0          0
  eth1:     500       5    0    0    0     0          0         0      700       7    0    0    0     0       0          0`;
    expect(parseNetDev(text)).toEqual({ rx: 1500, tx: 2700 });
  });

  it('sums block I/O by operation for v1 and v2', () => {
    expect(
      parseBlkio('8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 100\n8:16 Read 1\n8:0 Total 12288\nTotal 12289\n'),
    ).toEqual({ read: 4097, write: 8192 });
    expect(parseIoStat('8:0 rbytes=100 wbytes=200 rios=1 wios=2\n8:16 rbytes=1 wbytes=2 rios=1 wios=1\n')).toEqual({
      read: 101,
      write: 202,
    });
  });

  it('computes the system CPU time like the docker daemon', () => {
    const stat = parseProcStat(
      'cpu  100 0 50 800 10 0 40 5 0 0\ncpu0 50 0 25 400 5 0 20 0 0 0\ncpu1 50 0 25 400 5 0 20 0 0 0\nintr 1\n',
    );
    expect(stat).toEqual({ ns: 1000 * 1e7, cpus: 2 });
    expect(keyValues('usage_usec 123\nuser_usec 100\n')).toEqual({ usage_usec: 123, user_usec: 100 });
  });
});

describe('parseDockerStats', () => {
  it('applies the docker CLI rules to a cgroup v1 response', () => {
    const raw = parseDockerStats(
      {
        cpu_stats: { cpu_usage: { total_usage: 5e9, percpu_usage: [1, 2, 3, 4] }, system_cpu_usage: 9e12 },
        memory_stats: { usage: 10_000, limit: 50_000, stats: { total_inactive_file: 3_000 } },
        networks: { eth0: { rx_bytes: 10, tx_bytes: 20 }, eth1: { rx_bytes: 1, tx_bytes: 2 } },
        blkio_stats: {
          io_service_bytes_recursive: [
            { op: 'Read', value: 7 },
            { op: 'Write', value: 9 },
            { op: 'Total', value: 16 },
          ],
        },
        pids_stats: { current: 3 },
      },
      42,
    );
    expect(raw).toEqual({
      at: 42,
      cpuNs: 5e9,
      systemCpuNs: 9e12,
      onlineCpus: 4,
      memoryBytes: 7_000,
      memoryLimitBytes: 50_000,
      netRxBytes: 11,
      netTxBytes: 22,
      blockReadBytes: 7,
      blockWriteBytes: 9,
      pids: 3,
    });
  });

  it('handles cgroup v2 fields, host networking and missing sections', () => {
    const raw = parseDockerStats(
      {
        cpu_stats: { cpu_usage: { total_usage: 1 }, system_cpu_usage: 2, online_cpus: 2 },
        memory_stats: { usage: 500, stats: { inactive_file: 100 } },
        blkio_stats: { io_service_bytes_recursive: null },
      },
      1,
    );
    expect(raw).toMatchObject({
      onlineCpus: 2,
      memoryBytes: 400,
      netRxBytes: undefined,
      blockReadBytes: undefined,
      pids: undefined,
    });
    expect(() => parseDockerStats('nope', 1)).toThrow();
  });
});
