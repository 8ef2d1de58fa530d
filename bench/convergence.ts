/**
 * Convergence on the harness swarm: how long from a change to the routes file renamed into place.
 *   - row insert → file: a routing row is inserted for a running service;
 *   - task running → file: a service is created for an existing row; the time its task reaches
 *     `running` (polled from the Docker API every 20 ms) to the file holding its server.
 * Beside Traefik's Swarm provider, which polls every 15 s (a change waits 7.5 s on average).
 * Then Docker API calls at rest, with the services of the run plus idle ones (replicas 0).
 *
 *   npx tsx bench/convergence.ts            # 50 services, 500 at rest, 60 s at rest
 */
import { readFileSync } from 'node:fs';
import { routeName } from '../src/router/index.js';
import { startRouterOnSwarm } from './router-on-swarm.js';

const SERVICES = Number(process.env.BENCH_SERVICES ?? 50);
const IDLE_SERVICES = Number(process.env.BENCH_IDLE_SERVICES ?? 450);
const REST_SECONDS = Number(process.env.BENCH_REST_SECONDS ?? 60);

const { postgres, swarm, app, file, destroy } = await startRouterOnSwarm('conv');

type Http = {
  routers?: Record<string, unknown>;
  services?: Record<string, { loadBalancer: { servers: Array<{ url: string }> } }>;
};
/** The file is a comment line then JSON. */
const readHttp = (): Http => {
  try {
    const text = readFileSync(file, 'utf8');
    return (JSON.parse(text.slice(text.indexOf('\n') + 1)) as { http: Http }).http;
  } catch {
    return {};
  }
};
async function until(check: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await check()) return performance.now();
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  throw new Error('timed out');
}
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

const rowToFile: number[] = [];
const taskToFile: number[] = [];
for (let i = 0; i < SERVICES; i++) {
  const deploymentId = `dep-${i}`;
  // Task running → file: the row exists first, then the service is created.
  await postgres.query(
    `INSERT INTO deployment_routing (id, deployment_id, domain, target_port) VALUES ($1, $2, $3, 8080)`,
    [`row-${i}`, deploymentId, `s${i}.example.com`],
  );
  const service = await swarm.docker.createService({
    Name: `bench-${i}`,
    Labels: { 'cloud.obiente.deployment_id': deploymentId },
    TaskTemplate: { ContainerSpec: { Image: swarm.image }, Networks: [{ Target: 'edge-net' }] },
    Mode: { Replicated: { Replicas: 1 } },
  });
  const serviceId = service.id;
  const running = await until(async () => {
    const tasks = (await swarm.docker.listTasks({ filters: { service: [serviceId] } })) as Array<{
      Status: { State: string };
    }>;
    return tasks.some((t) => t.Status.State === 'running');
  });
  const name = routeName({ id: `row-${i}`, deploymentId });
  const written = await until(() =>
    (readHttp().services?.[name]?.loadBalancer.servers ?? []).some((s) => s.url.startsWith('http://10.')),
  );
  taskToFile.push(Math.max(0, written - running));

  // Row insert → file: a second row for the same, running service.
  const inserted = performance.now();
  await postgres.query(
    `INSERT INTO deployment_routing (id, deployment_id, domain, target_port) VALUES ($1, $2, $3, 8080)`,
    [`extra-${i}`, deploymentId, `x${i}.example.com`],
  );
  const extra = routeName({ id: `extra-${i}`, deploymentId });
  const seen = await until(() => readHttp().routers?.[extra] !== undefined);
  rowToFile.push(seen - inserted);
}

const POLL_MS = 15_000;
for (const [what, xs] of [
  ['task running → file', taskToFile],
  ['row insert → file', rowToFile],
] as const) {
  const p50 = pct(xs, 50);
  const p99 = pct(xs, 99);
  console.log(
    `${what}: n=${xs.length} p50 ${p50.toFixed(0)} ms, p99 ${p99.toFixed(0)} ms, max ${Math.max(...xs).toFixed(0)} ms ` +
      `| Traefik Swarm provider (15 s poll): mean 7500 ms, worst 15000 ms → p50 ${(POLL_MS / 2 / p50).toFixed(0)}× faster, p99 ${(POLL_MS / p99).toFixed(0)}× faster than its worst case`,
  );
}

// At rest: idle services (no tasks) bring the count up, then count the API calls for a while.
for (let i = 0; i < IDLE_SERVICES; i++) {
  await swarm.docker.createService({
    Name: `idle-${i}`,
    Labels: { 'cloud.obiente.deployment_id': `idle-${i}` },
    TaskTemplate: { ContainerSpec: { Image: swarm.image } },
    Mode: { Replicated: { Replicas: 0 } },
  });
}
const statsOf = async () => {
  const health = (await app.inject({ method: 'GET', url: '/health' })).json<{
    components: { router: { swarm: { apiCalls: Record<string, number> } } };
  }>();
  return Object.values(health.components.router.swarm.apiCalls).reduce((a, b) => a + b, 0);
};
await new Promise((resolve) => setTimeout(resolve, 5_000)); // let the creation events settle
const before = await statsOf();
await new Promise((resolve) => setTimeout(resolve, REST_SECONDS * 1000));
const calls = (await statsOf()) - before;
const total = SERVICES + IDLE_SERVICES;
const perMinute = (calls * 60) / REST_SECONDS;
// Traefik's Swarm provider per 15 s tick: 3 + one task list per service (pkg/provider/docker/pswarm.go).
const traefikPerMinute = 4 * (3 + total);
console.log(
  `at rest with ${total} services: ${perMinute.toFixed(1)} Docker API calls/min ` +
    `| Traefik Swarm provider: ~${traefikPerMinute} calls/min → ${(traefikPerMinute / Math.max(perMinute, 1)).toFixed(0)}× fewer`,
);

await destroy();
process.exit(0);
