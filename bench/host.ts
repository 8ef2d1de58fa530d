/**
 * Host sampling cost per tick: HostSampler.sample() (descriptors kept open, one pread per procfs
 * file, statfs through the thread pool) against the naive way measured in the same run (each file
 * opened, read and closed with fs.promises.readFile, then the same parsing), on this machine's /proc.
 *
 *   npx tsx bench/host.ts            # BENCH_SAMPLES=2000
 */
import { readFile, statfs } from 'node:fs/promises';
import { HostSampler } from '../src/nodes/index.js';
import { parseDiskstats, parseLoadavg, parseMeminfo, parseNetDev, parseProcStat } from '../src/nodes/host-parsers.js';

const samples = Number(process.env.BENCH_SAMPLES ?? 2_000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);

async function measure(name: string, sample: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 100; i++) await sample();
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  for (let i = 0; i < samples; i++) await sample();
  const wall = (performance.now() - w0) / samples;
  const c = process.cpuUsage(c0);
  const cpu = (c.user + c.system) / 1000 / samples;
  console.log(`| ${name} | ${(cpu * 1000).toFixed(0)} µs | ${(wall * 1000).toFixed(0)} µs |`);
  return cpu;
}

const sampler = new HostSampler({ procRoot: '/proc', diskPaths: ['/'] }, { onProblem: () => undefined });
const naive = async () => {
  const [stat, loadavg, meminfo, diskstats, netdev] = await Promise.all(
    ['/proc/stat', '/proc/loadavg', '/proc/meminfo', '/proc/diskstats', '/proc/1/net/dev'].map((f) =>
      readFile(f, 'latin1'),
    ),
  );
  return [
    parseProcStat(stat!),
    parseLoadavg(loadavg!),
    parseMeminfo(meminfo!),
    parseDiskstats(diskstats!),
    parseNetDev(netdev!),
    await statfs('/'),
  ];
};
for (let round = 0; round < rounds; round++) {
  console.log(`\nround ${round + 1}: ${samples} samples\n| way | CPU per sample | wall per sample |\n|---|---|---|`);
  const fast = await measure('HostSampler (pread on open descriptors)', () => sampler.sample());
  const slow = await measure('readFile per file per tick', naive);
  console.log(`ratio: ${(slow / fast).toFixed(1)}× less CPU`);
}
sampler.close();
