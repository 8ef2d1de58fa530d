/**
 * Render + validate + serialise + atomic write of N routes, against the naive approach (the same
 * config serialised with a YAML library) measured in the same run. Three figures per size:
 *
 * - full: the service's long-lived renderer, warmed up, given every row as a new object (as when
 *   the whole table changed): it validates, renders and writes all N routes;
 * - start: the first publish of a new process (code not yet optimised, heap empty), one child
 *   process per run: what the service does once, when it starts;
 * - incremental: the steady state, one row changed.
 *
 *   npx tsx bench/render.ts            # 10,000 and 100,000 routes
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { SwarmService, SwarmTask, Topology } from '../src/discovery/index.js';
import { renderTraefikConfig, TraefikFileWriter, TraefikRenderer, type RoutingRow } from '../src/router/index.js';

const BCRYPT = `$2y$10$${'c'.repeat(53)}`;
/**
 * 20 % of routes with a rate limit and compression (an object), and a mixed catalogue on another
 * 10 %: authentication, a concurrency limit and a circuit breaker, in the row's order (an array);
 * 2 % of rows are weighted, in pairs splitting a host, 1 % are shadows mirroring those splits,
 * and 5 % are TCP routes by SNI (half of them passed through, a quarter with both TCP
 * middlewares; see fixture).
 * BENCH_CATALOGUE=0 leaves the catalogue, the splits, shadows and TCP out (for a comparison with
 * code that predates them).
 */
function middlewareOf(i: number): unknown {
  if (i % 5 === 0) return { rateLimit: { average: 100, burst: 50 }, compress: true };
  if (i % 10 === 3 && process.env.BENCH_CATALOGUE !== '0')
    return [
      { basicAuth: { users: [`user${i}:${BCRYPT}`], realm: 'app' } },
      { inFlightReq: { amount: 50 } },
      { circuitBreaker: { expression: 'NetworkErrorRatio() > 0.30 || LatencyAtQuantileMS(50.0) > 100' } },
    ];
  return null;
}

function fixture(n: number): { rows: RoutingRow[]; topology: Topology } {
  const rows: RoutingRow[] = [];
  const services = new Map<string, SwarmService>();
  const tasks = new Map<string, SwarmTask[]>();
  for (let i = 0; i < n; i++) {
    const deploymentId = `dep-${i}`;
    // 2 % of rows weighted, in pairs that split one host between two deployments (a canary).
    const weighted = process.env.BENCH_CATALOGUE !== '0' && (i % 100 === 7 || i % 100 === 8);
    // 1 % shadows, each mirroring a tenth of the split two rows before it.
    const shadow = process.env.BENCH_CATALOGUE !== '0' && i % 100 === 9;
    // 5 % TCP: TLS terminated or passed through, some with a source range and a connection limit.
    const tcp = process.env.BENCH_CATALOGUE !== '0' && i % 20 === 11;
    rows.push({
      // Zero-padded: the rows come in id order, as RoutingTable hands them out (ORDER BY id COLLATE "C").
      id: `route-${String(i).padStart(6, '0')}`,
      deployment_id: deploymentId,
      domain: `app-${i % 100 === 8 && weighted ? i - 1 : shadow ? i - 2 : i}.apps.example.com`,
      ...(weighted ? { weight: i % 100 === 7 ? 90 : 10 } : {}),
      ...(shadow ? { mirror_percent: 10 } : {}),
      service_name: 'default',
      path_prefix: i % 4 === 0 && !weighted ? `/api/v${i % 7}` : '',
      target_port: 8080,
      protocol: tcp ? 'tcp' : 'http',
      ssl_enabled: tcp || i % 2 === 0,
      ...(tcp ? { tls_passthrough: i % 40 === 11 } : {}),
      ssl_cert_resolver: null,
      load_balancer_algo: i % 10 === 0 ? 'sticky' : 'round-robin',
      middleware:
        tcp && i % 80 === 31
          ? { ipAllowList: { sourceRange: ['10.0.0.0/8'] }, inFlightConn: { amount: 100 } }
          : middlewareOf(i),
    });
    const id = `svc${i}`;
    services.set(id, {
      id,
      name: `web-${i}`,
      deploymentId,
      serviceName: 'default',
      mode: 'replicated',
      replicas: 2,
      ports: [],
      hostNetwork: false,
      labels: {},
    });
    tasks.set(
      id,
      [0, 1].map((r) => ({
        id: `t${i}-${r}`,
        serviceId: id,
        nodeId: 'n1',
        state: 'running',
        desiredState: 'running',
        containerId: `c${i}${r}`,
        addresses: [{ networkId: 'net', networkName: 'edge', ip: `10.${(i >> 8) & 255}.${i & 255}.${r + 2}` }],
      })),
    );
  }
  return { rows, topology: { services, tasks, nodes: new Map() } };
}

const options = {
  labelPrefix: 'cloud.obiente',
  entryPoints: { http: 'web', https: 'websecure' },
  defaultCertResolver: 'le',
  network: 'edge',
  fallbackUrl: 'http://edge:8080',
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
type Publish = Awaited<ReturnType<typeof publish>>;

/** One publish as the router does it: render (from the cache where it can), then write. */
async function publish(renderer: TraefikRenderer, writer: TraefikFileWriter, rows: RoutingRow[], topology: Topology) {
  const start = performance.now();
  const result = renderer.render(rows, topology);
  const rendered = performance.now();
  await writer.write(result.body);
  const end = performance.now();
  return {
    total: end - start,
    render: rendered - start,
    write: end - rendered,
    bytes: result.body.length,
    routes: result.rendered,
  };
}

async function writerIn(dir: string): Promise<TraefikFileWriter> {
  const writer = new TraefikFileWriter(dir);
  await writer.init();
  return writer;
}

/** A child process: the first publish of a new process, printed as JSON with the process's RSS. */
async function startChild(n: number): Promise<void> {
  const { rows, topology } = fixture(n);
  const dir = mkdtempSync('/tmp/swarm-edge-bench-render-');
  const writer = await writerIn(dir);
  const result = await publish(new TraefikRenderer(options), writer, rows, topology);
  await writer.close();
  rmSync(dir, { recursive: true, force: true });
  process.stdout.write(JSON.stringify({ ...result, rss: process.memoryUsage().rss }));
}

/** Runs startChild in a new process (with this process's loader flags: tsx). */
function publishInNewProcess(n: number): Publish & { rss: number } {
  const output = execFileSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], {
    env: { ...process.env, RENDER_BENCH_START: String(n) },
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  return JSON.parse(output) as Publish & { rss: number };
}

async function measure(n: number): Promise<void> {
  const { rows: tableRows, topology } = fixture(n);
  let rows = tableRows;
  const dir = mkdtempSync('/tmp/swarm-edge-bench-render-');
  const writer = await writerIn(dir);
  const fullRuns = n >= 100_000 ? 3 : 9;
  // Runs not counted: V8 is still optimising the code (at 10,000 routes the first three took
  // 1.2-1.5x as long as the rest). The cold case is what `start` measures.
  const fullWarmup = n >= 100_000 ? 1 : 3;
  const startRuns = n >= 100_000 ? 3 : 5;
  const full: Publish[] = [];
  const starts: Array<Publish & { rss: number }> = [];
  const warm: Publish[] = [];
  let peakRss = 0;

  const renderer = new TraefikRenderer(options);
  await publish(renderer, writer, rows, topology);
  // Full: every row a new object, with a new domain (so the document changes and is written).
  for (let run = 0; run < fullWarmup + fullRuns; run++) {
    rows = tableRows.map((row) => ({ ...row, domain: `r${run}-${row.domain as string}` }));
    const result = await publish(renderer, writer, rows, topology);
    if (result.routes !== n) throw new Error(`a full publish rendered ${result.routes} of ${n} routes`);
    if (run >= fullWarmup) full.push(result);
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }
  // Incremental, in steady state: before each measured publish, a publish that takes a row change
  // and a change of one deployment's tasks, then the measured one with one more row changed.
  const warmRuns = n >= 100_000 ? 5 : 9;
  for (let run = 0; run < warmRuns + 2; run++) {
    rows[1] = { ...rows[1]!, domain: `settle-${run}.apps.example.com` };
    const svc = `svc${(run * 7919) % n}`;
    const tasks = topology.tasks.get(svc)!;
    (topology.tasks as Map<string, SwarmTask[]>).set(svc, [
      ...tasks.slice(1),
      { ...tasks[0]!, id: `${tasks[0]!.id}-r${run}` },
    ]);
    await publish(renderer, writer, rows, topology);
    rows[2] = { ...rows[2]!, domain: `warm-${run}.apps.example.com` };
    const measured = await publish(renderer, writer, rows, topology);
    // The first runs still pay for the garbage of the full phase.
    if (run >= 2) warm.push(measured);
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }
  await writer.close();
  rmSync(dir, { recursive: true, force: true });
  for (let run = 0; run < startRuns; run++) {
    const result = publishInNewProcess(n);
    starts.push(result);
    peakRss = Math.max(peakRss, result.rss);
  }

  const { config } = renderTraefikConfig(rows, topology, options);
  const naiveStart = performance.now();
  stringify(config);
  const naiveMs = performance.now() - naiveStart;
  const m = (xs: Publish[], k: 'total' | 'render' | 'write') => median(xs.map((x) => x[k])).toFixed(0);
  const ratio = (xs: Publish[]) => (naiveMs / median(xs.map((x) => x.total))).toFixed(1);
  console.log(
    `${n.toLocaleString('en')} routes (${(full[0]!.bytes / 1e6).toFixed(1)} MB): ` +
      `full render+validate+write (every row new) median ${m(full, 'total')} ms [render ${m(full, 'render')} / write ${m(full, 'write')}] over ${full.length} runs after ${fullWarmup} not counted; ` +
      `first publish of a new process median ${m(starts, 'total')} ms [render ${m(starts, 'render')} / write ${m(starts, 'write')}] over ${starts.length} processes; ` +
      `incremental (1 row changed, ${warm[0]!.routes} route re-rendered) median ${m(warm, 'total')} ms [render ${m(warm, 'render')} / write ${m(warm, 'write')}] over ${warm.length} runs; ` +
      `peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB; baseline YAML-library serialisation alone ${naiveMs.toFixed(0)} ms → ` +
      `full ${ratio(full)}×, start ${ratio(starts)}×, incremental ${ratio(warm)}× faster end to end`,
  );
}

if (process.env.RENDER_BENCH_START) await startChild(Number(process.env.RENDER_BENCH_START));
else for (const n of (process.env.BENCH_SIZES ?? '10000,100000').split(',').map(Number)) await measure(n);
