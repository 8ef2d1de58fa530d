/**
 * Convergence polling under churn, on the harness swarm: SERVICES services of 2 replicas with a
 * routing row each, then a rolling update of ROLL of them at once (stop-first, parallelism 1,
 * 1 s stop grace). Reports the router's Docker API calls per second during the roll, beside
 * Traefik's Swarm provider for the same cluster ((3 + services) calls every 15 s), and task
 * running → routes file, p50 and p99, for every task the roll starts.
 *
 *   npx tsx bench/rolling.ts          # 100 services, 40 rolled
 *
 * Running and file times are observed from outside: the bench lists running tasks every 100 ms
 * (its own calls, not counted against the router) and reads the routes file every 20 ms.
 */
import { readFileSync } from 'node:fs';
import { waitFor } from '../test/harness/index.js';
import { startRouterOnSwarm } from './router-on-swarm.js';

const SERVICES = Number(process.env.BENCH_SERVICES ?? 100);
const ROLL = Number(process.env.BENCH_ROLL ?? 40);

const { postgres, swarm, app, file, destroy } = await startRouterOnSwarm('roll');

interface TaskJson {
  ID: string;
  ServiceID: string;
  Status: { State: string };
  NetworksAttachments?: Array<{ Network: { Spec: { Name: string } }; Addresses: string[] }>;
}
const runningTasks = async () =>
  ((await swarm.docker.listTasks({ filters: { 'desired-state': ['running'] } })) as TaskJson[]).filter(
    (t) => t.Status.State === 'running',
  );
const ipOf = (task: TaskJson) =>
  task.NetworksAttachments?.find((a) => a.Network.Spec.Name === 'edge-net')?.Addresses[0]?.split('/')[0];
const fileText = () => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};
const apiCalls = async () => {
  const health = (await app.inject({ method: 'GET', url: '/health' })).json<{
    components: { router: { swarm: { apiCalls: Record<string, number> } } };
  }>();
  return Object.values(health.components.router.swarm.apiCalls).reduce((a, b) => a + b, 0);
};
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;

// Services and rows, created together; then wait until every task runs and is in the file.
const services = [];
for (let i = 0; i < SERVICES; i++) {
  await postgres.query(
    `INSERT INTO deployment_routing (id, deployment_id, domain, target_port) VALUES ($1, $2, $3, 8080)`,
    [`row-${i}`, `dep-${i}`, `s${i}.example.com`],
  );
  services.push(
    await swarm.docker.createService({
      Name: `roll-${i}`,
      Labels: { 'cloud.obiente.deployment_id': `dep-${i}` },
      TaskTemplate: {
        ContainerSpec: { Image: swarm.image, StopGracePeriod: 1_000_000_000 },
        Networks: [{ Target: 'edge-net' }],
      },
      Mode: { Replicated: { Replicas: 2 } },
      UpdateConfig: { Parallelism: 1, Order: 'stop-first' },
      // No virtual IP: the default /24 overlay holds 200 tasks, not 200 tasks and 100 VIPs.
      EndpointSpec: { Mode: 'dnsrr' },
    }),
  );
}
await waitFor(
  'every task running and in the file',
  async () => {
    const tasks = await runningTasks();
    if (tasks.length < SERVICES * 2) return false;
    const text = fileText();
    return tasks.every((t) => text.includes(`http://${ipOf(t)}:8080`));
  },
  900_000,
  1_000,
);
console.log(`${SERVICES} services × 2 replicas running and published`);
await new Promise((resolve) => setTimeout(resolve, 5_000));

// The roll: ROLL services updated at once; watch tasks and the file until all converge.
const before = new Set((await runningTasks()).map((t) => t.ID));
const runningAt = new Map<string, { at: number; ip: string | undefined; ipWasPublished: boolean }>();
const fileAt = new Map<string, number>();
let watching = true;
const watchFile = (async () => {
  while (watching) {
    const text = fileText();
    const now = performance.now();
    for (const [id, seen] of runningAt) {
      if (!fileAt.has(id) && seen.ip !== undefined && text.includes(`http://${seen.ip}:8080`)) fileAt.set(id, now);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
})();
const callsBefore = await apiCalls();
const started = performance.now();
await Promise.all(
  services.slice(0, ROLL).map(async (service, i) => {
    const current = (await service.inspect()) as {
      Version: { Index: number };
      Spec: { TaskTemplate: { ContainerSpec: Record<string, unknown> } };
    };
    const spec = current.Spec;
    spec.TaskTemplate.ContainerSpec.Env = [`ROLL=${i}`];
    await service.update({ version: current.Version.Index, ...spec });
  }),
);
let settled = 0;
await waitFor(
  'the rolled services converged',
  async () => {
    const tasks = await runningTasks();
    const now = performance.now();
    const text = fileText();
    for (const task of tasks) {
      if (before.has(task.ID) || runningAt.has(task.ID)) continue;
      const ip = ipOf(task);
      runningAt.set(task.ID, { at: now, ip, ipWasPublished: ip !== undefined && text.includes(`http://${ip}:8080`) });
    }
    const fresh = tasks.filter((t) => !before.has(t.ID)).length;
    if (fresh >= ROLL * 2 && [...runningAt.keys()].every((id) => fileAt.has(id) || runningAt.get(id)!.ipWasPublished))
      return true;
    settled = now;
    return false;
  },
  900_000,
  100,
);
const rollMs = performance.now() - started;
const calls = (await apiCalls()) - callsBefore;
watching = false;
await watchFile;

const latencies: number[] = [];
let reused = 0;
for (const [id, seen] of runningAt) {
  const published = fileAt.get(id);
  if (seen.ipWasPublished || published === undefined) reused += 1;
  else latencies.push(Math.max(0, published - seen.at));
}
const perSecond = calls / (rollMs / 1000);
const traefikPerSecond = (3 + SERVICES) / 15;
console.log(
  `rolling update of ${ROLL} of ${SERVICES} services (2 replicas): ${(rollMs / 1000).toFixed(1)} s, ` +
    `${calls} Docker API calls = ${perSecond.toFixed(2)} calls/s | Traefik Swarm provider ${traefikPerSecond.toFixed(2)} calls/s ` +
    `(${(traefikPerSecond / perSecond).toFixed(2)}× as many) | task running → file over ${latencies.length} tasks ` +
    `(${reused} skipped: address reused or already published): p50 ${pct(latencies, 50).toFixed(0)} ms, p99 ${pct(latencies, 99).toFixed(0)} ms ` +
    `(observed by 100 ms task listing: ±100 ms) | last unconverged check ${((settled - started) / 1000).toFixed(1)} s`,
);

await destroy();
process.exit(0);
