/**
 * Collection cost per tick.
 *
 * 1. 50 real containers on the harness dockerd, read by each source: CPU time of this process
 *    and wall time per sweep (the Docker source also costs the daemon: its CPU is shown too).
 * 2. A synthetic sweep of 1,000 containers over a fake cgroup v1 tree and /proc, against the
 *    naive way (async readFile per file) in the same run.
 *
 *   npx tsx bench/collection.ts            # BENCH_CONTAINERS=50
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import {
  CgroupStatsSource,
  DockerStatsSource,
  LocalContainers,
  type LocalContainer,
  type StatsSource,
} from '../src/metrics/index.js';
import { startSwarm } from '../test/harness/index.js';

const log = pino({ level: 'silent' });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function sweep(
  source: StatsSource,
  containers: readonly LocalContainer[],
  runs: number,
  /** Runs before each measured sweep, outside the measurement. */
  before?: () => void,
) {
  const cpu: number[] = [];
  const wall: number[] = [];
  let failures = 0;
  for (let i = 0; i < runs; i++) {
    before?.();
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    const results = await source.readAll(containers);
    wall.push(performance.now() - w0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
    failures += results.filter((r) => r instanceof Error).length;
  }
  return { cpu: median(cpu), wall: median(wall), failures };
}

/** CPU time of a process from /proc, in ms. */
function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

async function realContainers(count: number) {
  const swarm = await startSwarm();
  try {
    await swarm.cli(['network', 'create', '-d', 'overlay', '--attachable', 'bench-net']);
    for (let i = 0; i < count; i++) {
      await swarm.cli([
        'run',
        '-d',
        '--network',
        'bench-net',
        '--label',
        `cloud.obiente.deployment_id=dep-${i % 10}`,
        swarm.image,
        'sleep',
        '100000',
      ]);
    }
    const list = await new LocalContainers(
      { labelPrefix: 'cloud.obiente', procRoot: '/proc', needsInspect: true, timeoutMs: 30_000 },
      { docker: swarm.docker, resolveDeployments: undefined, log },
    ).list();
    const daemonPid = Number(readFileSync(path.join(swarm.root, 'docker.pid'), 'utf8'));
    const cgroup = new CgroupStatsSource({ cgroupRoot: '/sys/fs/cgroup', procRoot: '/proc' });
    const docker = new DockerStatsSource(swarm.docker, { concurrency: 16, timeoutMs: 30_000 });
    await sweep(cgroup, list, 2);
    await sweep(docker, list, 1);
    const c = await sweep(cgroup, list, 9);
    const d0 = processCpuMs(daemonPid);
    const d = await sweep(docker, list, 5);
    const daemonCpu = (processCpuMs(daemonPid) - d0) / 5;
    console.log(
      `${list.length} real containers per tick: cgroup source ${c.cpu.toFixed(1)} ms CPU / ${c.wall.toFixed(1)} ms wall; ` +
        `docker source ${d.cpu.toFixed(1)} ms CPU here + ${daemonCpu.toFixed(0)} ms CPU in dockerd / ${d.wall.toFixed(0)} ms wall ` +
        `→ cgroup is ${(d.cpu / c.cpu).toFixed(1)}× cheaper in this process, ${((d.cpu + daemonCpu) / c.cpu).toFixed(0)}× counting the daemon, ` +
        `${(d.wall / c.wall).toFixed(0)}× faster (failures: cgroup ${c.failures}, docker ${d.failures})`,
    );
  } finally {
    await swarm.destroy();
  }
}

function fakeTree(count: number) {
  const root = mkdtempSync('/tmp/swarm-edge-bench-cgroup-');
  const cgroupRoot = path.join(root, 'cgroup');
  const procRoot = path.join(root, 'proc');
  const write = (file: string, text: string) => {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, text);
  };
  write(
    path.join(procRoot, 'stat'),
    'cpu  100 0 50 800 10 0 40 5 0 0\ncpu0 50 0 25 400 5 0 20 0 0 0\ncpu1 50 0 25 400 5 0 20 0 0 0\n',
  );
  write(path.join(procRoot, 'meminfo'), 'MemTotal:       24000000 kB\n');
  const containers: LocalContainer[] = [];
  for (let i = 0; i < count; i++) {
    const id = i.toString(16).padStart(64, '0');
    const pid = 100_000 + i;
    const cg = `/docker/${id}`;
    write(
      path.join(procRoot, String(pid), 'cgroup'),
      `12:pids:${cg}\n8:blkio:${cg}\n5:memory:${cg}\n4:cpu:${cg}\n3:cpuacct:${cg}\n0::/\n`,
    );
    write(
      path.join(procRoot, String(pid), 'net', 'dev'),
      'Inter-|   Receive\n face |bytes\n    lo: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n  eth0: 123456 10 0 0 0 0 0 0 654321 20 0 0 0 0 0 0\n',
    );
    write(path.join(cgroupRoot, 'cpuacct', cg, 'cpuacct.usage'), `${i * 1000}\n`);
    write(path.join(cgroupRoot, 'memory', cg, 'memory.usage_in_bytes'), '10485760\n');
    write(path.join(cgroupRoot, 'memory', cg, 'memory.limit_in_bytes'), '9223372036854771712\n');
    write(
      path.join(cgroupRoot, 'memory', cg, 'memory.stat'),
      'cache 1\nrss 2\ntotal_inactive_file 4096\ntotal_active_file 1\n'.repeat(4),
    );
    write(
      path.join(cgroupRoot, 'blkio', cg, 'blkio.throttle.io_service_bytes_recursive'),
      '254:0 Read 4096\n254:0 Write 8192\n254:0 Sync 0\n254:0 Async 0\n254:0 Total 12288\nTotal 12288\n',
    );
    write(path.join(cgroupRoot, 'pids', cg, 'pids.current'), '3\n');
    // The extras: throttling (cpu controller) and OOM kills (memory controller), as Linux 6 writes them.
    write(
      path.join(cgroupRoot, 'cpu', cg, 'cpu.stat'),
      `nr_periods ${i * 10}\nnr_throttled ${i}\nthrottled_time ${i * 1_000_000}\nnr_bursts 0\nburst_time 0\n`,
    );
    write(path.join(cgroupRoot, 'memory', cg, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n');
    // Every container CPU-limited: the extras' worst case (without a quota cpu.stat is not read).
    write(path.join(cgroupRoot, 'cpu', cg, 'cpu.cfs_quota_us'), '20000\n');
    containers.push({
      ref: {
        containerId: id,
        deploymentId: `dep-${i % 50}`,
        nodeId: 'n1',
        serviceId: undefined,
        taskId: undefined,
        name: `c${i}`,
      },
      pid,
      cgroupParent: '',
      hostNetwork: false,
    });
  }
  return { root, cgroupRoot, procRoot, containers };
}

/** The naive reader: every file through async readFile, all containers at once. */
async function naiveSweep(cgroupRoot: string, procRoot: string, containers: readonly LocalContainer[]) {
  await readFile(path.join(procRoot, 'stat'), 'utf8');
  await Promise.all(
    containers.map(async (c) => {
      const cg = `/docker/${c.ref.containerId}`;
      await Promise.all([
        readFile(path.join(procRoot, String(c.pid), 'cgroup'), 'utf8'),
        readFile(path.join(procRoot, String(c.pid), 'net', 'dev'), 'utf8'),
        readFile(path.join(cgroupRoot, 'cpuacct', cg, 'cpuacct.usage'), 'utf8'),
        readFile(path.join(cgroupRoot, 'memory', cg, 'memory.usage_in_bytes'), 'utf8'),
        readFile(path.join(cgroupRoot, 'memory', cg, 'memory.limit_in_bytes'), 'utf8'),
        readFile(path.join(cgroupRoot, 'memory', cg, 'memory.stat'), 'utf8'),
        readFile(path.join(cgroupRoot, 'blkio', cg, 'blkio.throttle.io_service_bytes_recursive'), 'utf8'),
        readFile(path.join(cgroupRoot, 'pids', cg, 'pids.current'), 'utf8'),
      ]);
    }),
  );
}

async function syntheticSweep(count: number) {
  const tree = fakeTree(count);
  try {
    const source = new CgroupStatsSource({ cgroupRoot: tree.cgroupRoot, procRoot: tree.procRoot, extras: false });
    await sweep(source, tree.containers, 3);
    const ours = await sweep(source, tree.containers, 15);
    // The container extras (throttling, OOM kills: two more files per container) side by side with
    // the sweep without them, alternating, so both see the same machine.
    const withExtras = new CgroupStatsSource({ cgroupRoot: tree.cgroupRoot, procRoot: tree.procRoot });
    await sweep(withExtras, tree.containers, 3);
    // Idle: the containers used no CPU since the last sweep. Busy: each used 50 ms, more than its
    // 20 ms quota per period, so throttling must be read (the extras' worst case).
    let usage = 0;
    const busy = () => {
      usage += 50_000_000;
      for (const c of tree.containers)
        writeFileSync(
          path.join(tree.cgroupRoot, 'cpuacct', 'docker', c.ref.containerId, 'cpuacct.usage'),
          `${usage}\n`,
        );
    };
    for (const [name, before] of [
      ['idle', undefined],
      ['busy', busy],
    ] as const) {
      const plain: number[] = [];
      const extra: number[] = [];
      for (let round = 0; round < 10; round++) {
        plain.push((await sweep(source, tree.containers, 5, before)).cpu);
        extra.push((await sweep(withExtras, tree.containers, 5, before)).cpu);
      }
      console.log(
        `synthetic ${count.toLocaleString('en')}-container sweep, ${name}, with the extras: ${median(extra).toFixed(1)} ms CPU against ${median(plain).toFixed(1)} ms without: +${((median(extra) / median(plain) - 1) * 100).toFixed(1)} %`,
      );
    }
    source.close();
    withExtras.close();
    const naiveCpu: number[] = [];
    const naiveWall: number[] = [];
    for (let i = 0; i < 15; i++) {
      const c0 = process.cpuUsage();
      const w0 = performance.now();
      await naiveSweep(tree.cgroupRoot, tree.procRoot, tree.containers);
      naiveWall.push(performance.now() - w0);
      const c = process.cpuUsage(c0);
      naiveCpu.push((c.user + c.system) / 1000);
    }
    console.log(
      `synthetic ${count.toLocaleString('en')}-container cgroup v1 sweep: ${ours.cpu.toFixed(1)} ms CPU / ${ours.wall.toFixed(1)} ms wall (failures ${ours.failures}); ` +
        `naive async readFile of the same files: ${median(naiveCpu).toFixed(1)} ms CPU / ${median(naiveWall).toFixed(1)} ms wall → ours ${(median(naiveCpu) / ours.cpu).toFixed(1)}× less CPU`,
    );
  } finally {
    rmSync(tree.root, { recursive: true, force: true });
  }
}

await syntheticSweep(1000);
if (!process.env.BENCH_SYNTHETIC_ONLY) await realContainers(Number(process.env.BENCH_CONTAINERS ?? 50));
