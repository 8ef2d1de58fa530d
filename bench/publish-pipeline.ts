/**
 * A change to the routes file in place, on a disk kept busy, with the publisher's overlapping
 * writes (RoutePublisher: the next publish stages and fsyncs its file beside the write under way)
 * against the serial loop it replaced (render, write, then the next render), in the same run.
 *
 * The router's file is fsynced before its rename; on ext4 (data=ordered) an fsync waits for a
 * journal commit, which writes out the dirty data of every other writer first. In the swarm-scale
 * runs dockerd starting containers made that seconds. Here a child process writes to the same
 * filesystem at BENCH_DIRTY_MB_PER_S (fsynced, and with many small files), while topology changes arrive at random (exponential gaps,
 * mean BENCH_CHANGE_GAP_MS) on 450 services × 2 tasks. For each change: the time from the change
 * to the first routes file in place rendered after it. Rounds alternate the two loops.
 *
 *   npx tsx bench/publish-pipeline.ts   # BENCH_ROUNDS=3 BENCH_ROUND_S=20 BENCH_DIRTY_MB_PER_S=40 BENCH_CHANGE_GAP_MS=30
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import pino from 'pino';
import type { SwarmService, SwarmTask, Topology } from '../src/discovery/index.js';
import {
  RoutePublisher,
  TraefikFileWriter,
  TraefikRenderer,
  type PublishedListener,
  type RoutingRow,
} from '../src/router/index.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const ROUND_MS = Number(process.env.BENCH_ROUND_S ?? 20) * 1000;
const DIRTY_MB_PER_S = Number(process.env.BENCH_DIRTY_MB_PER_S ?? 40);
const CHANGE_GAP_MS = Number(process.env.BENCH_CHANGE_GAP_MS ?? 30);
const SERVICES = 450;
const say = (line: string) => process.stdout.write(`${line}\n`);
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;

const options = {
  labelPrefix: 'cloud.obiente',
  entryPoints: { http: 'web', https: 'websecure' },
  defaultCertResolver: 'le',
  network: 'edge',
  fallbackUrl: 'http://edge:8080',
};

const rows: RoutingRow[] = [];
const services = new Map<string, SwarmService>();
const tasks = new Map<string, SwarmTask[]>();
let generation = 0;
const task = (i: number, replica: number): SwarmTask => ({
  id: `t${i}-${replica}-${generation}`,
  serviceId: `svc${i}`,
  nodeId: 'n1',
  state: 'running',
  desiredState: 'running',
  containerId: `c${i}-${replica}-${generation}`,
  addresses: [{ networkId: 'net', networkName: 'edge', ip: `10.20.${generation % 250}.${(i % 250) + 2}` }],
});
for (let i = 0; i < SERVICES; i++) {
  rows.push({
    id: `route-${String(i).padStart(6, '0')}`,
    deployment_id: `dep-${i}`,
    domain: `app-${i}.apps.example.com`,
    service_name: 'default',
    path_prefix: '',
    target_port: 8080,
    protocol: 'http',
    ssl_enabled: true,
    ssl_cert_resolver: null,
    load_balancer_algo: 'round-robin',
    middleware: null,
  });
  services.set(`svc${i}`, {
    id: `svc${i}`,
    name: `web-${i}`,
    deploymentId: `dep-${i}`,
    serviceName: 'default',
    mode: 'replicated',
    replicas: 2,
    ports: [],
    hostNetwork: false,
    labels: {},
  });
  tasks.set(`svc${i}`, [task(i, 0), task(i, 1)]);
}
const topology = (): Topology => ({ services, tasks: new Map(tasks), nodes: new Map() });
/** One task of a random service replaced by a new one (a rolling update's step). */
function change(): void {
  generation += 1;
  const i = Math.floor(Math.random() * SERVICES);
  tasks.set(`svc${i}`, [tasks.get(`svc${i}`)![1]!, task(i, 0)]);
}

interface Loop {
  changed(causedAt: number): void;
  onPublished(listener: PublishedListener): void;
  idle(): Promise<void>;
}

/** The publish loop before the overlapping writes: render, write, and only then the next render. */
class SerialLoop implements Loop {
  private readonly renderer = new TraefikRenderer(options);
  private readonly listeners: PublishedListener[] = [];
  private dirty = false;
  private running: Promise<void> | undefined;
  constructor(private readonly writer: TraefikFileWriter) {}
  changed(): void {
    this.dirty = true;
    this.running ??= this.drain();
  }
  onPublished(listener: PublishedListener): void {
    this.listeners.push(listener);
  }
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }
  private async drain(): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    while (this.dirty) {
      this.dirty = false;
      const snapshotAt = performance.now();
      const { body } = this.renderer.render(rows, topology());
      await this.writer.write(body);
      const writtenAt = performance.now();
      for (const listener of this.listeners) listener(snapshotAt, writtenAt);
    }
    this.running = undefined;
  }
}

function pipelined(writer: TraefikFileWriter): Loop {
  const noop = () => undefined;
  return new RoutePublisher(options, {
    sources: { rows: () => ({ rows, fresh: true }), topology: () => ({ topology: topology(), synced: true }) },
    file: writer,
    redis: undefined,
    telemetry: { published: noop, rowRejected: noop, startPublished: noop, publishFailed: noop },
    log: pino({ level: 'silent' }),
  });
}

/**
 * Another writer on the same filesystem, as dockerd starting containers: every tick a 4 MB file
 * written and fsynced (of the last 16 kept), and a directory of 64 small files made (of the last
 * 16 kept), so the journal always has a commit under way.
 */
function busyTheDisk(dir: string) {
  const script = `
    const fs = require('node:fs');
    const chunk = Buffer.alloc(4 << 20, 7);
    const small = Buffer.alloc(4096, 7);
    let n = 0;
    setInterval(() => {
      const file = ${JSON.stringify(dir)} + '/load-' + (n % 16);
      const fd = fs.openSync(file, 'w');
      fs.writeSync(fd, chunk);
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      const sub = ${JSON.stringify(dir)} + '/dir-' + (n % 16);
      fs.rmSync(sub, { recursive: true, force: true });
      fs.mkdirSync(sub);
      for (let i = 0; i < 64; i++) fs.writeFileSync(sub + '/' + i, small);
      n += 1;
    }, ${Math.max(1, Math.round(4000 / DIRTY_MB_PER_S))});`;
  return spawn(process.execPath, ['-e', script], { stdio: 'inherit' });
}

async function round(kind: 'serial' | 'pipelined'): Promise<{ latencies: number[]; publishes: number }> {
  const dir = mkdtempSync('/tmp/swarm-edge-bench-pipeline-');
  const writer = new TraefikFileWriter(dir);
  await writer.init();
  const loop = kind === 'serial' ? new SerialLoop(writer) : pipelined(writer);
  const waiting: number[] = [];
  const latencies: number[] = [];
  let publishes = 0;
  loop.onPublished((snapshotAt, writtenAt) => {
    publishes += 1;
    // Changes are made at the time they are recorded, so a publish whose sources were read after one carries it.
    while (waiting.length > 0 && waiting[0]! <= snapshotAt) latencies.push(writtenAt - waiting.shift()!);
  });
  loop.changed(performance.now());
  await loop.idle();
  await writer.idle();
  const end = performance.now() + ROUND_MS;
  while (performance.now() < end) {
    await new Promise((resolve) => setTimeout(resolve, -Math.log(1 - Math.random()) * CHANGE_GAP_MS));
    change();
    const at = performance.now();
    waiting.push(at);
    loop.changed(at);
  }
  await loop.idle();
  await writer.close();
  rmSync(dir, { recursive: true, force: true });
  return { latencies, publishes };
}

const loadDir = mkdtempSync('/tmp/swarm-edge-bench-pipeline-load-');
const load = busyTheDisk(loadDir);
try {
  await new Promise((resolve) => setTimeout(resolve, 5_000));
  const all = { serial: [] as number[], pipelined: [] as number[] };
  for (let r = 1; r <= ROUNDS; r++)
    for (const kind of r % 2 === 1 ? (['serial', 'pipelined'] as const) : (['pipelined', 'serial'] as const)) {
      const { latencies, publishes } = await round(kind);
      all[kind].push(...latencies);
      say(
        `round ${r} ${kind}: ${latencies.length} changes, ${publishes} publishes; change → file p50 ${pct(latencies, 50).toFixed(0)} ms, p99 ${pct(latencies, 99).toFixed(0)} ms, max ${Math.max(...latencies).toFixed(0)} ms`,
      );
    }
  const ratio = (p: number) => (pct(all.pipelined, p) / pct(all.serial, p)).toFixed(2);
  say(
    `all rounds: serial p50 ${pct(all.serial, 50).toFixed(0)} / p99 ${pct(all.serial, 99).toFixed(0)} ms; pipelined p50 ${pct(all.pipelined, 50).toFixed(0)} / p99 ${pct(all.pipelined, 99).toFixed(0)} ms; pipelined / serial: p50 ${ratio(50)}×, p99 ${ratio(99)}×`,
  );
} finally {
  load.kill();
  rmSync(loadDir, { recursive: true, force: true });
}
