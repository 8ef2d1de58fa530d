/**
 * Render + validate + serialise + atomic write of N routes, against the naive approach (the same
 * config serialised with a YAML library) measured in the same run.
 *
 *   npx tsx bench/render.ts            # 10,000 and 100,000 routes
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { stringify } from 'yaml';
import type { SwarmService, SwarmTask, Topology } from '../src/discovery/index.js';
import { renderTraefikConfig, TraefikFileWriter, TraefikRenderer, type RoutingRow } from '../src/router/index.js';

function fixture(n: number): { rows: RoutingRow[]; topology: Topology } {
  const rows: RoutingRow[] = [];
  const services = new Map<string, SwarmService>();
  const tasks = new Map<string, SwarmTask[]>();
  for (let i = 0; i < n; i++) {
    const deploymentId = `dep-${i}`;
    rows.push({
      // Zero-padded: the rows come in id order, as RoutingTable hands them out (ORDER BY id COLLATE "C").
      id: `route-${String(i).padStart(6, '0')}`, deployment_id: deploymentId, domain: `app-${i}.apps.example.com`, service_name: 'default',
      path_prefix: i % 4 === 0 ? `/api/v${i % 7}` : '', target_port: 8080, protocol: 'http', ssl_enabled: i % 2 === 0,
      ssl_cert_resolver: null, load_balancer_algo: i % 10 === 0 ? 'sticky' : 'round-robin',
      middleware: i % 5 === 0 ? { rateLimit: { average: 100, burst: 50 }, compress: true } : null,
    });
    const id = `svc${i}`;
    services.set(id, { id, name: `web-${i}`, deploymentId, serviceName: 'default', mode: 'replicated', replicas: 2, ports: [], hostNetwork: false, labels: {} });
    tasks.set(id, [0, 1].map((r) => ({
      id: `t${i}-${r}`, serviceId: id, nodeId: 'n1', state: 'running', desiredState: 'running', containerId: `c${i}${r}`,
      addresses: [{ networkId: 'net', networkName: 'edge', ip: `10.${(i >> 8) & 255}.${i & 255}.${r + 2}` }],
    })));
  }
  return { rows, topology: { services, tasks, nodes: new Map() } };
}

const options = { labelPrefix: 'cloud.obiente', entryPoints: { http: 'web', https: 'websecure' }, defaultCertResolver: 'le', network: 'edge', fallbackUrl: 'http://edge:8080' };
const dir = mkdtempSync('/tmp/swarm-edge-bench-render-');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

/** One publish as the router does it: render (from the cache where it can), then write. */
async function publish(renderer: TraefikRenderer, writer: TraefikFileWriter, rows: RoutingRow[], topology: Topology) {
  const start = performance.now();
  const result = renderer.render(rows, topology);
  const rendered = performance.now();
  await writer.write(result.body);
  const end = performance.now();
  return { total: end - start, render: rendered - start, write: end - rendered, bytes: result.body.length, routes: result.rendered };
}

for (const n of (process.env.BENCH_SIZES ?? '10000,100000').split(',').map(Number)) {
  const { rows, topology } = fixture(n);
  const writer = new TraefikFileWriter(dir);
  await writer.init();
  const runs = n >= 100_000 ? 3 : 7;
  const cold: Array<Awaited<ReturnType<typeof publish>>> = [];
  const warm: Array<Awaited<ReturnType<typeof publish>>> = [];
  let peakRss = 0;
  // Cold: a fresh renderer validates and renders every row (the first publish after start). The
  // service renders cold once, with nothing to collect yet: a full collection before each run
  // keeps the previous run's renderer, now garbage, out of the measurement. The first run, with
  // code not yet optimised (as at start-up), is reported on its own.
  let first: Awaited<ReturnType<typeof publish>> | undefined;
  for (let run = 0; run <= runs; run++) {
    rows[0] = { ...rows[0]!, domain: `cold-${run}.apps.example.com` };
    collectGarbage();
    const result = await publish(new TraefikRenderer(options), writer, rows, topology);
    if (run === 0) first = result;
    else cold.push(result);
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }
  // Incremental, in steady state (one long-lived renderer, as in the service): before each
  // measured publish, a publish that takes a row change and a change of one deployment's tasks,
  // then the measured one with one more row changed.
  const renderer = new TraefikRenderer(options);
  await publish(renderer, writer, rows, topology);
  const warmRuns = n >= 100_000 ? 5 : 9;
  for (let run = 0; run < warmRuns + 2; run++) {
    rows[1] = { ...rows[1]!, domain: `settle-${run}.apps.example.com` };
    const svc = `svc${(run * 7919) % n}`;
    const tasks = topology.tasks.get(svc)!;
    (topology.tasks as Map<string, SwarmTask[]>).set(svc, [...tasks.slice(1), { ...tasks[0]!, id: `${tasks[0]!.id}-r${run}` }]);
    await publish(renderer, writer, rows, topology);
    rows[2] = { ...rows[2]!, domain: `warm-${run}.apps.example.com` };
    const measured = await publish(renderer, writer, rows, topology);
    // The first runs still pay for the garbage of the cold phase.
    if (run >= 2) warm.push(measured);
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }
  const { config } = renderTraefikConfig(rows, topology, options);
  const naiveStart = performance.now();
  stringify(config);
  const naiveMs = performance.now() - naiveStart;
  const m = (xs: typeof cold, k: 'total' | 'render' | 'write') => median(xs.map((x) => x[k])).toFixed(0);
  const coldMs = median(cold.map((x) => x.total));
  console.log(
    `${n.toLocaleString('en')} routes (${(cold[0]!.bytes / 1e6).toFixed(1)} MB): ` +
      `cold render+validate+write median ${m(cold, 'total')} ms [render ${m(cold, 'render')} / write ${m(cold, 'write')}] (first run, unoptimised code: ${first!.total.toFixed(0)} ms); ` +
      `incremental (1 row changed, ${warm[0]!.routes} route re-rendered) median ${m(warm, 'total')} ms [render ${m(warm, 'render')} / write ${m(warm, 'write')}] over ${warm.length} runs (cold: ${runs}); ` +
      `peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB; baseline YAML-library serialisation alone ${naiveMs.toFixed(0)} ms → ` +
      `cold ${(naiveMs / coldMs).toFixed(1)}×, incremental ${(naiveMs / median(warm.map((x) => x.total))).toFixed(1)}× faster end to end`,
  );
}
rmSync(dir, { recursive: true, force: true });
