/**
 * HTTP endpoints under load (autocannon), each beside bare fastify's hello world measured in the
 * same run: /health, /metrics/observability, /metrics, and /traefik/dynamic serving the cached
 * body of 10,000 routes. The endpoints are registered by the service's own functions over real
 * components (health registry, Prometheus registry, the router's renderer and cached body).
 *
 *   npx tsx bench/http.ts          # BENCH_SECONDS=10 BENCH_CONNECTIONS=50
 */
import autocannon from 'autocannon';
import Fastify, { type FastifyInstance } from 'fastify';
import pino from 'pino';
import type { SwarmService, SwarmTask, Topology } from '../src/discovery/index.js';
import { MetricsFeed } from '../src/feed/metrics-feed.js';
import { HealthRegistry } from '../src/health/index.js';
import {
  registerErrorHandling,
  registerHealthRoutes,
  registerMetricsRoutes,
  registerObservabilityRoutes,
  registerTraefikRoutes,
} from '../src/http/index.js';
import { Aggregator, LiveCache } from '../src/metrics/index.js';
import { TraefikRenderer, type RoutingRow } from '../src/router/index.js';
import { createTelemetry } from '../src/telemetry/index.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);

async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  return `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
}

async function load(url: string, headers: Record<string, string> = {}) {
  const result = await autocannon({ url, connections: CONNECTIONS, duration: SECONDS, headers });
  return {
    rps: result.requests.average,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx,
    bytes: result.throughput.average,
  };
}

function routes(n: number) {
  const rows: RoutingRow[] = [];
  const services = new Map<string, SwarmService>();
  const tasks = new Map<string, SwarmTask[]>();
  for (let i = 0; i < n; i++) {
    rows.push({
      id: `route-${String(i).padStart(6, '0')}`,
      deployment_id: `dep-${i}`,
      domain: `app-${i}.apps.example.com`,
      service_name: 'default',
      path_prefix: '',
      target_port: 8080,
      protocol: 'http',
      ssl_enabled: i % 2 === 0,
      ssl_cert_resolver: null,
      load_balancer_algo: null,
      middleware: null,
    });
    services.set(`s${i}`, {
      id: `s${i}`,
      name: `web-${i}`,
      deploymentId: `dep-${i}`,
      serviceName: 'default',
      mode: 'replicated',
      replicas: 2,
      ports: [],
      hostNetwork: false,
      labels: {},
    });
    tasks.set(
      `s${i}`,
      [0, 1].map((r) => ({
        id: `t${i}-${r}`,
        serviceId: `s${i}`,
        nodeId: 'n1',
        state: 'running',
        desiredState: 'running',
        containerId: undefined,
        addresses: [{ networkId: 'n', networkName: 'edge', ip: `10.0.${i % 250}.${r + 2}` }],
      })),
    );
  }
  const topology: Topology = { services, tasks, nodes: new Map() };
  return new TraefikRenderer({
    labelPrefix: 'cloud.obiente',
    entryPoints: { http: 'web', https: 'websecure' },
    defaultCertResolver: 'le',
    network: 'edge',
    fallbackUrl: 'http://edge:8080',
  }).render(rows, topology);
}

async function service(): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  const health = new HealthRegistry();
  for (const name of ['postgres', 'docker', 'redis', 'metrics']) {
    health.register(name, { enabled: true, optional: name !== 'postgres' });
    health.up(name);
  }
  const rendered = routes(10_000);
  const counts = { active: rendered.statuses.length, noReplicas: 0, noService: 0, rejected: 0 };
  health.addComponent('router', () => ({
    publishedAt: new Date().toISOString(),
    routes: rendered.statuses.length,
    rejected: counts.rejected,
  }));
  const telemetry = createTelemetry();
  registerErrorHandling(app);
  registerHealthRoutes(app, { health, startedAt: Date.now() });
  registerMetricsRoutes(app, { telemetry });
  registerTraefikRoutes(app, {
    state: () => ({
      body: rendered.body,
      stale: false,
      statuses: rendered.statuses,
      counts,
      publishedAt: Date.now(),
      waitingFor: undefined,
    }),
    token: 'bench-token-0123456789',
  });
  const cache = new LiveCache({ windowMs: 300_000, maxContainers: 10_000, maxBytes: 64 * 1024 * 1024 });
  const aggregator = new Aggregator({ graceMs: 7_000 });
  const feed = new MetricsFeed(
    { maxBufferedBytes: 1 << 20, slowGraceMs: 10_000, maxSubscriptions: 50, heartbeatMs: 30_000, windowMs: 300_000 },
    { cache, redis: undefined, log: pino({ level: 'silent' }) },
  );
  registerObservabilityRoutes(app, {
    report: () => ({ liveCache: cache.stats(), aggregator: aggregator.stats(), feed: feed.stats() }),
  });
  telemetry.gauge('swarm_edge_feed_subscribers', 'bench', () => feed.stats().subscribers);
  return app;
}

const bare = Fastify({ logger: false });
bare.get('/', () => ({ hello: 'world' }));
const bareUrl = await listen(bare);
const ours = await service();
const oursUrl = await listen(ours);

const rows: Array<[string, string, number, number]> = [];
for (const [name, path, headers, target] of [
  ['/health', '/health', {}, 0.7],
  ['/metrics/observability', '/metrics/observability', {}, 0],
  ['/metrics', '/metrics', {}, 0],
  // Traefik's Go client sends Accept-Encoding: gzip on its own.
  [
    '/traefik/dynamic (10,000 routes: 5.4 MB, 0.4 MB gzipped)',
    '/traefik/dynamic',
    { authorization: 'Bearer bench-token-0123456789', 'accept-encoding': 'gzip' },
    0.5,
  ],
] as const) {
  const baseline = await load(`${bareUrl}/`);
  const result = await load(`${oursUrl}${path}`, headers);
  const ratio = result.rps / baseline.rps;
  console.log(
    `${name}: ${result.rps.toFixed(0)} req/s (p99 ${result.p99} ms, ${(result.bytes / 2 ** 20).toFixed(1)} MiB/s, errors ${result.errors}) ` +
      `vs bare fastify ${baseline.rps.toFixed(0)} req/s → ${(ratio * 100).toFixed(0)} %${target ? ` (target ≥ ${target * 100} %: ${ratio >= target ? 'met' : 'MISSED'})` : ''}`,
  );
  rows.push([name, path, result.rps, ratio]);
}
await ours.close();
await bare.close();
