/**
 * Render + validate + serialise + atomic write of N routes, against the naive approach (the same
 * config serialised with a YAML library) measured in the same run.
 *
 *   npx tsx bench/render.ts            # 10,000 and 100,000 routes
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { stringify } from 'yaml';
import type { SwarmService, SwarmTask, Topology } from '../src/discovery/index.js';
import { renderTraefikConfig, TraefikFileWriter, type RoutingRow } from '../src/router/index.js';

function fixture(n: number): { rows: RoutingRow[]; topology: Topology } {
  const rows: RoutingRow[] = [];
  const services = new Map<string, SwarmService>();
  const tasks = new Map<string, SwarmTask[]>();
  for (let i = 0; i < n; i++) {
    const deploymentId = `dep-${i}`;
    rows.push({
      id: `route-${i}`, deployment_id: deploymentId, domain: `app-${i}.apps.example.com`, service_name: 'default',
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

for (const n of (process.env.BENCH_SIZES ?? "10000,100000").split(",").map(Number)) {
  const { rows, topology } = fixture(n);
  const writer = new TraefikFileWriter(dir);
  await writer.init();
  const runs = n >= 100_000 ? 3 : 7;
  const times: number[] = [];
  const phases = { render: [] as number[], serialise: [] as number[], write: [] as number[] };
  let peakRss = 0;
  let bytes = 0;
  for (let run = 0; run < runs; run++) {
    // Vary one row so every run really writes.
    rows[0] = { ...rows[0]!, domain: `app-0-${run}.apps.example.com` };
    const start = performance.now();
    const { config } = renderTraefikConfig(rows, topology, options);
    const rendered = performance.now();
    const json = JSON.stringify(config, null, 1);
    const serialised = performance.now();
    await writer.write(`# bench\n${json}\n`);
    const end = performance.now();
    times.push(end - start);
    phases.render.push(rendered - start);
    phases.serialise.push(serialised - rendered);
    phases.write.push(end - serialised);
    bytes = json.length;
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }
  const { config } = renderTraefikConfig(rows, topology, options);
  const naiveStart = performance.now();
  stringify(config);
  const naiveMs = performance.now() - naiveStart;
  const ours = median(times);
  console.log(
    `${n.toLocaleString('en')} routes: render+validate+write median ${ours.toFixed(0)} ms over ${runs} runs ` +
      `[render ${median(phases.render).toFixed(0)} / serialise ${median(phases.serialise).toFixed(0)} / write ${median(phases.write).toFixed(0)} ms] ` +
      `(${(bytes / 1e6).toFixed(1)} MB), peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB; ` +
      `baseline YAML-library serialisation alone ${naiveMs.toFixed(0)} ms → ours is ${(naiveMs / ours).toFixed(1)}× faster end to end`,
  );
}
rmSync(dir, { recursive: true, force: true });
