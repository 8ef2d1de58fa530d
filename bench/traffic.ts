/**
 * Request metrics: scrape + parse + join of one Traefik target per tick, at 1,000 and 10,000
 * Traefik services (4 codes × 2 methods, 12 buckets: about 120,000 and 1.2 million series lines),
 * served by a stand-in in another process (bench/traefik-stand-in.ts) so this one pays only for
 * scraping. Three ways, each in a process of its own (so peak memory is its own):
 * - `service-counters`: what the service runs (TrafficMonitor.tick: the streamed exposition, the
 *   line cache, deltas, the join to deployments);
 * - `library-naive`: the whole body as a string, parse-prometheus-text-format over all of it, then
 *   a walk of its objects summing per service (its histogram objects merge every series' buckets
 *   into one, so this way also gets latency wrong: its cost is what is measured);
 * - `regex-lines`: the body split into lines, a regex per line and one per label.
 *
 *   npx tsx bench/traffic.ts                 # 1,000 and 10,000 services
 *   BENCH_SERVICES=1000 npx tsx bench/traffic.ts
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import pino from 'pino';
import { ServiceDirectory } from '../src/traffic/service-directory.js';
import { TrafficMonitor } from '../src/traffic/traffic-monitor.js';
import type { TrafficStore } from '../src/traffic/traffic-store.js';
import { routeName } from '../src/router/index.js';

const MODES = ['service-counters', 'library-naive', 'regex-lines'] as const;
type Mode = (typeof MODES)[number];
const here = import.meta.dirname;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Result {
  mode: Mode;
  services: number;
  cpuMs: number;
  wallMs: number;
  peakRssMb: number;
  peakHeapMb: number;
  deployments: number;
}

/** The directory the stand-in's services map to: routeName of (id, deployment) is what the stand-in names. */
function directoryFor(services: number): Map<string, string> {
  const map = new Map<string, string>();
  for (let i = 0; i < services; i++)
    map.set(
      `deployment-${String(i).padStart(5, '0')}-${((i * 2654435761) >>> 0).toString(16).padStart(8, '0')}@file`,
      `dep-${i}`,
    );
  return map;
}

async function measure(mode: Mode, url: string, services: number, ticks: number): Promise<Result> {
  const names = directoryFor(services);
  let tick: () => Promise<number>;
  if (mode === 'service-counters') {
    // The real directory, answering from the stand-in's names (its routeName is checked once below).
    const directory = new ServiceDirectory(
      { keepRemovedMs: 60_000 },
      { pool: { query: () => Promise.resolve({ rows: [] }) } as never },
    );
    (directory as unknown as { deploymentOf: (s: string) => string | undefined }).deploymentOf = (s) => names.get(s);
    Object.defineProperty(directory, 'lastRefresh', { get: () => Date.now() });
    let deployments = 0;
    const store = {
      claimLease: () => Promise.resolve(true),
      readCheckpoint: () => Promise.resolve(undefined),
      write: () => Promise.resolve({ ok: true, seq: 1, rows: 0 }),
      releaseLease: () => Promise.resolve(),
    } as unknown as TrafficStore;
    const monitor = new TrafficMonitor(
      { targets: [url], intervalMs: 5_000, timeoutMs: 60_000, maxBytes: 1024 * 1024 * 1024 },
      { store, directory, publish: (f) => (deployments = f.length), log: pino({ level: 'silent' }) },
    );
    tick = async () => {
      await monitor.tick();
      return deployments;
    };
  } else if (mode === 'library-naive') {
    tick = async () => {
      const text = await (await fetch(url)).text();
      const byDeployment = new Map<string, number>();
      for (const family of parsePrometheusTextFormat(text)) {
        if (!family.name.startsWith('traefik_service_')) continue;
        for (const metric of family.metrics) {
          const deployment = names.get(metric.labels?.service ?? '');
          if (deployment === undefined) continue;
          const value = Number(metric.value ?? metric.count ?? 0);
          byDeployment.set(deployment, (byDeployment.get(deployment) ?? 0) + value);
        }
      }
      return byDeployment.size;
    };
  } else {
    const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?[ \t]+(\S+)(?:[ \t]+\S+)?$/;
    const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    tick = async () => {
      const text = await (await fetch(url)).text();
      const byDeployment = new Map<string, number>();
      for (const line of text.split('\n')) {
        const match = LINE.exec(line);
        if (!match || !match[1]!.startsWith('traefik_service_')) continue;
        const labels: Record<string, string> = {};
        for (const [, key, value] of (match[2] ?? '').matchAll(LABEL)) labels[key!] = value!;
        const deployment = names.get(labels.service ?? '');
        if (deployment === undefined) continue;
        byDeployment.set(deployment, (byDeployment.get(deployment) ?? 0) + Number(match[3]));
      }
      return byDeployment.size;
    };
  }
  const cpu: number[] = [];
  const wall: number[] = [];
  let peakRss = 0;
  let peakHeap = 0;
  let deployments = 0;
  for (let i = 0; i < ticks + 1; i++) {
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    deployments = await tick();
    const w = performance.now() - w0;
    const c = process.cpuUsage(c0);
    const memory = process.memoryUsage();
    peakRss = Math.max(peakRss, memory.rss);
    peakHeap = Math.max(peakHeap, memory.heapUsed);
    // The first tick of service-counters is its baseline, and fills its line cache: reported apart.
    if (i === 0) {
      process.stderr.write(
        `  ${mode}: first tick ${w.toFixed(0)} ms wall, ${((c.user + c.system) / 1000).toFixed(0)} ms CPU\n`,
      );
      continue;
    }
    cpu.push((c.user + c.system) / 1000);
    wall.push(w);
  }
  return {
    mode,
    services,
    cpuMs: median(cpu),
    wallMs: median(wall),
    peakRssMb: peakRss / 2 ** 20,
    peakHeapMb: peakHeap / 2 ** 20,
    deployments,
  };
}

async function child(mode: Mode, url: string, services: number, ticks: number): Promise<Result> {
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(here, 'traffic.ts'), '--child', mode, url, String(services), String(ticks)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((resolve) => proc.on('exit', resolve));
  return JSON.parse(out) as Result;
}

if (process.argv[2] === '--child') {
  const [, , , mode, url, services, ticks] = process.argv;
  process.stdout.write(JSON.stringify(await measure(mode as Mode, url!, Number(services), Number(ticks))));
  process.exit(0);
}

// The stand-in names its services as routeName does: a slug, a dash, hex. Checked, so the bench's
// join is the service's join.
if (!/^[a-z0-9-]+-[0-9a-f]{16}$/.test(routeName({ id: 'x', deploymentId: 'deployment-00001' })))
  throw new Error('route names changed shape: update the stand-in');

const sizes = process.env.BENCH_SERVICES ? [Number(process.env.BENCH_SERVICES)] : [1_000, 10_000];
const rounds = Number(process.env.BENCH_ROUNDS ?? 1);
for (const services of sizes) {
  const server = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(here, 'traefik-stand-in.ts'), String(services)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const first = await new Promise<string>((resolve) => createInterface({ input: server.stdout }).once('line', resolve));
  const { url, bytes, lines } = JSON.parse(first) as { url: string; bytes: number; lines: number };
  console.log(`\n${services} Traefik services: ${lines} lines, ${(bytes / 2 ** 20).toFixed(1)} MiB per scrape`);
  const ticks = services >= 10_000 ? 5 : 15;
  for (let round = 0; round < rounds; round++) {
    console.log(
      '| way | CPU per tick | wall per tick | peak RSS | peak heap | deployments | CPU vs service-counters |',
    );
    console.log('|---|---|---|---|---|---|---|');
    let base: Result | undefined;
    for (const mode of MODES) {
      const r = await child(mode, url, services, ticks);
      base ??= r;
      console.log(
        `| ${r.mode} | ${r.cpuMs.toFixed(1)} ms | ${r.wallMs.toFixed(1)} ms | ${r.peakRssMb.toFixed(0)} MB | ${r.peakHeapMb.toFixed(0)} MB | ${r.deployments} | ${(r.cpuMs / base.cpuMs).toFixed(1)}× |`,
      );
    }
  }
  server.kill();
}
