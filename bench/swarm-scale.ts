/**
 * The router at scale on the harness swarm: SERVICES services × 2 replicas of an upstream that
 * serves 2 s past SIGTERM (10 s stop grace), each with a routing row, then churn:
 *   1. a rolling update of ROLL services at once (stop-first, parallelism 1);
 *   2. SCALE services scaled 2 → 3, then back 3 → 2;
 *   3. REMOVE services removed.
 * Measured from outside, for every task the churn starts or stops:
 *   - running → in the routes file, p50 / p99: from the task's own status timestamp (when its agent
 *     recorded `running`) to the first file read that held its address (reads every 20 ms); also
 *     from the first task listing that showed it running (every 100 ms, as the earlier runs);
 *   - desired state shutdown → out of the file, p50 / p99, and against the container's exit (the
 *     daemon's own `die` events): the share of old servers gone before their container exited;
 *   - the router's Docker API calls per minute, peak RSS of this process (the router runs in it;
 *     the observers, in bench/scale-observer.ts, do not), and render time per publish (its own
 *     histogram);
 *   - the same churn under Traefik's Swarm provider, which polls every 15 s: computed for this
 *     cluster from the measured shutdown → exit times.
 *
 *   npx tsx bench/swarm-scale.ts     # BENCH_SERVICES=450 BENCH_ROLL=100 BENCH_SCALE=50 BENCH_REMOVE=25
 *
 * What fits: on one node, every task of an overlay network takes a port on that network's Linux
 * bridge, and (unless the network is internal) another on docker_gwbridge; a bridge holds 1,024
 * ports (BR_MAX_PORTS). 450 × 2 tasks plus the 50 of the scale-up stay under it; 500 × 2 plus 50
 * do not. The network is internal (the upstreams need no egress).
 */
import { fork } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../test/harness/index.js';
import { startRouterOnSwarm } from './router-on-swarm.js';
import type { ObserverCommand, ObserverMessage, ObserverResult } from './scale-observer.js';
import { fileIps, ipOf, type TaskJson } from './scale-tasks.js';

const SERVICES = Number(process.env.BENCH_SERVICES ?? 450);
const ROLL = Number(process.env.BENCH_ROLL ?? 100);
const SCALE = Number(process.env.BENCH_SCALE ?? 50);
const REMOVE = Number(process.env.BENCH_REMOVE ?? 25);
/**
 * Tasks the setup lets start at once. Created back to back, 900 tasks overran this node: with
 * 1,800 containers and none of the new ones past `starting` for minutes, Swarm had replaced
 * running tasks of 400 services in one wave, with no update asked (2026-12-02).
 */
const STARTING_AT_MOST = 40;
const GRACEFUL = ['sh', '-c', 'trap "sleep 2; exit 0" TERM; while true; do sleep 3600 & wait $!; done'];
/** The stages of swarm_edge_route_start_seconds (src/router/start-trace.ts), and their total. */
const START_STAGES = ['delivery', 'hint', 'queue', 'publish', 'total'];
const say = (line: string) => process.stdout.write(`${line}\n`);
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;

const { postgres, swarm, app, file, destroy } = await startRouterOnSwarm('scale', {
  subnet: '10.20.0.0/20',
  internal: true,
});
// A failed run must not leave its daemon and 900 containers to the next one.
process.once('uncaughtException', (error) => {
  say(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  void destroy().finally(() => process.exit(1));
});

const allTasks = async () => (await swarm.docker.listTasks()) as TaskJson[];
const scrape = async () => {
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  const value = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  /** Cumulative bucket counts by `le` of a histogram, for the series whose labels match `labels`. */
  const buckets = (name: string, labels: RegExp = /^/) => {
    const counts = new Map<string, number>();
    for (const [, inside, n] of text.matchAll(new RegExp(`^${name}_bucket\\{([^}]*)\\} (\\S+)$`, 'gm'))) {
      const le = /le="([^"]+)"/.exec(inside!)?.[1];
      if (le !== undefined && labels.test(inside!)) counts.set(le, Number(n));
    }
    return counts;
  };
  const convergence = buckets('swarm_edge_route_convergence_seconds');
  // Code before the start trace has no such histogram: its stages print as '?'.
  const startStages = new Map(
    START_STAGES.map((stage) => [stage, buckets('swarm_edge_route_start_seconds', new RegExp(`stage="${stage}"`))]),
  );
  const health = (await app.inject({ method: 'GET', url: '/health' })).json<{
    components: {
      router: { swarm: { apiCalls: Record<string, number>; startHints: object; stopHints?: object } };
    };
  }>();
  return {
    renderSum: value('swarm_edge_route_render_seconds_sum'),
    renderCount: value('swarm_edge_route_render_seconds_count'),
    convergence,
    startStages,
    write: buckets('swarm_edge_route_write_seconds'),
    calls: Object.values(health.components.router.swarm.apiCalls).reduce((a, b) => a + b, 0),
    byKind: health.components.router.swarm.apiCalls,
    startHints: health.components.router.swarm.startHints,
    stopHints: health.components.router.swarm.stopHints,
  };
};

// ---- the cluster ------------------------------------------------------------------------------
const created = Date.now();
const serviceIds: string[] = [];
// One statement: a connection per row timed out once the daemon loaded the machine.
await postgres.query(
  `INSERT INTO deployment_routing (id, deployment_id, domain, target_port)
   SELECT 'row-' || i, 'dep-' || i, 's' || i || '.example.com', 8080 FROM generate_series(0, $1::int - 1) AS i`,
  [SERVICES],
);
for (let i = 0; i < SERVICES; i++) {
  const service = await swarm.docker.createService({
    Name: `scale-${i}`,
    Labels: { 'cloud.obiente.deployment_id': `dep-${i}` },
    TaskTemplate: {
      ContainerSpec: { Image: swarm.image, Command: GRACEFUL, StopGracePeriod: 10_000_000_000 },
      Networks: [{ Target: 'edge-net' }],
    },
    Mode: { Replicated: { Replicas: 2 } },
    UpdateConfig: { Parallelism: 1, Order: 'stop-first' },
    EndpointSpec: { Mode: 'dnsrr' },
  });
  serviceIds.push((service as unknown as { id: string }).id);
  const wanted = serviceIds.length * 2;
  await waitFor(
    `at most ${STARTING_AT_MOST} of ${wanted} tasks starting`,
    async () =>
      wanted - (await swarm.docker.listContainers({ filters: { status: ['running'] } })).length <= STARTING_AT_MOST,
    600_000,
    1_000,
  );
}
await waitFor(
  'every task running and in the file',
  async () => {
    const tasks = (await allTasks()).filter((t) => t.DesiredState === 'running' && t.Status.State === 'running');
    if (tasks.length < SERVICES * 2) return false;
    const ips = fileIps(file);
    return tasks.every((t) => ips.has(ipOf(t)!));
  },
  3_600_000,
  2_000,
);
say(`${SERVICES} services × 2 replicas running and published after ${((Date.now() - created) / 1000).toFixed(0)} s`);
await new Promise((resolve) => setTimeout(resolve, 5_000));

// ---- observers --------------------------------------------------------------------------------
// In a process of their own (bench/scale-observer.ts): this one's event loop is the router's.
const observer = fork(fileURLToPath(new URL('./scale-observer.ts', import.meta.url)), [], {
  env: { ...process.env, BENCH_OBSERVE_SOCKET: swarm.socketPath, BENCH_OBSERVE_FILE: file },
});
/** The observer's last task listing, by service, and when that listing was asked. */
let latest: { askedAt: number; byService: Map<string, { running: number; runningNew: number }> } | undefined;
let observed: ObserverResult | undefined;
await new Promise<void>((resolve, reject) => {
  observer.once('error', reject);
  observer.once('exit', (code) => {
    if (observed === undefined) say(`the observer exited (${code}) before its result`);
    reject(new Error(`the observer exited (${code}) before it was ready`));
  });
  observer.on('message', (message: ObserverMessage) => {
    if (message.type === 'ready') resolve();
    else if (message.type === 'tasks')
      latest = {
        askedAt: message.askedAt,
        byService: new Map(message.summary.map(([id, running, runningNew]) => [id, { running, runningNew }])),
      };
    else observed = message.result;
  });
});
const tell = (command: ObserverCommand) => observer.send(command);
let peakRss = process.memoryUsage().rss;
const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);

const t0 = Date.now();
/** This process's event loop over the churn: the router's, and the churn's own calls. */
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
const before = await scrape();
/** Waits until a task listing asked after this call shows `done`, by service. */
const settle = (what: string, done: (running: (id: string) => { running: number; runningNew: number }) => boolean) => {
  const since = Date.now();
  return waitFor(
    what,
    () =>
      latest !== undefined &&
      latest.askedAt >= since &&
      done((id) => latest!.byService.get(id) ?? { running: 0, runningNew: 0 }),
    900_000,
    100,
  );
};

/**
 * Updates a service's spec, again when the managers time out (HTTP 500, raft's DeadlineExceeded:
 * on a slow machine 100 updates at once can outlast a proposal's deadline). The spec is read again
 * first, so an update that was applied after all is not made twice.
 */
async function updateService(id: string, change: (spec: Record<string, unknown>) => boolean): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    const service = swarm.docker.getService(id);
    const current = (await service.inspect()) as { Version: { Index: number }; Spec: Record<string, unknown> };
    if (!change(current.Spec)) return;
    try {
      await service.update({ version: current.Version.Index, ...current.Spec });
      return;
    } catch (error) {
      if (attempt >= 5 || !/DeadlineExceeded|update out of sequence/.test(String(error))) throw error;
      say(`update of ${id} timed out (attempt ${attempt}): reading its spec again`);
    }
  }
}

// 1. Rolling update of ROLL services at once.
const rolled = serviceIds.slice(0, ROLL);
await Promise.all(
  rolled.map((id, i) =>
    updateService(id, (spec) => {
      const container = (spec.TaskTemplate as { ContainerSpec: { Env?: string[] } }).ContainerSpec;
      if (container.Env?.[0] === `ROLL=${i}`) return false;
      container.Env = [`ROLL=${i}`];
      return true;
    }),
  ),
);
await settle('the roll', (of) => rolled.every((id) => of(id).runningNew === 2));
say(`rolled ${ROLL} services in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

// 2. Scale up, then down.
const scaled = serviceIds.slice(ROLL, ROLL + SCALE);
const scaleTo = (replicas: number) =>
  Promise.all(
    scaled.map((id) =>
      updateService(id, (spec) => {
        if ((spec.Mode as { Replicated?: { Replicas?: number } }).Replicated?.Replicas === replicas) return false;
        spec.Mode = { Replicated: { Replicas: replicas } };
        return true;
      }),
    ),
  );
tell({ type: 'phase', phase: 'scale up' });
await scaleTo(3);
await settle('scale up', (of) => scaled.every((id) => of(id).running === 3));
await scaleTo(2);
await settle('scale down', (of) => scaled.every((id) => of(id).running === 2));

// 3. Removals.
const removed = serviceIds.slice(ROLL + SCALE, ROLL + SCALE + REMOVE);
const removedAt = Date.now();
await Promise.all(removed.map((id) => swarm.docker.getService(id).remove()));
await new Promise((resolve) => setTimeout(resolve, 15_000));
const churnMs = Date.now() - t0;
const after = await scrape();
clearInterval(rssTimer);
tell({ type: 'stop' });
await waitFor("the observer's result", () => observed !== undefined, 60_000, 100);

// ---- exits and figures ------------------------------------------------------------------------
const { listMs } = observed!;
const baseline = new Set(observed!.baseline);
const seen = new Map(observed!.seen);
const inFile = new Map(observed!.inFile);
const exitAt = new Map(observed!.exitAt);
const startAt = new Map(observed!.startAt);
const startReadAt = new Map(observed!.startReadAt);
const phaseOf = new Map(observed!.phaseOf);
/** The upstream exits 2 s after its SIGTERM (its `kill` event; the exit is what this bench streams). */
const SERVES_AFTER_TERM_MS = 2_000;

const toFile = new Map<string, number[]>();
/** The same, from each task's own status timestamp. */
const stampToFile: number[] = [];
/** From the container's `start` event: to the file, and to the agent's `running` (its report's lag). */
const startToFile: number[] = [];
const startToStamp: number[] = [];
/** The start event's own delivery: from the daemon's timestamp to the observer reading it. */
const startToRead: number[] = [];
/** Each start's figures, for the slowest few to be shown. */
const slowStarts: Array<{
  id: string;
  step: string;
  toFile: number;
  started: number;
  read: number | undefined;
  first: number;
  stamp: number | undefined;
}> = [];
const kinds = ['roll', 'scale', 'remove'] as const;
const stops = new Map(
  kinds.map((k) => [
    k,
    {
      outOfFile: [] as number[],
      margins: [] as number[],
      beforeExit: 0,
      beforeSignal: 0,
      stopped: 0,
      stillPublished: 0,
    },
  ]),
);
const shutdownToExit: number[] = [];
const kindOf = (service: string) =>
  rolled.includes(service)
    ? 'roll'
    : scaled.includes(service)
      ? 'scale'
      : removed.includes(service)
        ? 'remove'
        : undefined;
for (const [id, task] of seen) {
  if (task.ip === undefined) continue;
  const presence = inFile.get(task.ip);
  if (!baseline.has(id) && task.runningAt !== undefined && presence && presence.first > 0) {
    const step = phaseOf.get(id) ?? 'roll';
    if (!toFile.has(step)) toFile.set(step, []);
    toFile.get(step)!.push(Math.max(0, presence.first - task.runningAt));
    if (task.runningStamp !== undefined) stampToFile.push(presence.first - task.runningStamp);
    const started = task.container === undefined ? undefined : startAt.get(task.container);
    if (started !== undefined) {
      startToFile.push(presence.first - started);
      const read = startReadAt.get(task.container!);
      slowStarts.push({
        id,
        step,
        toFile: presence.first - started,
        started,
        read,
        first: presence.first,
        stamp: task.runningStamp,
      });
      if (read !== undefined) startToRead.push(read - started);
      if (task.runningStamp !== undefined) startToStamp.push(task.runningStamp - started);
    }
  }
  const kind = kindOf(task.service);
  // A removed service's tasks leave the task list with it: the removal call is their shutdown.
  const shutdownAt = task.shutdownAt ?? (kind === 'remove' ? removedAt : undefined);
  if (kind === undefined || shutdownAt === undefined || task.container === undefined) continue;
  const exit = exitAt.get(task.container);
  if (exit === undefined) continue;
  const figures = stops.get(kind)!;
  figures.stopped += 1;
  shutdownToExit.push(exit - shutdownAt);
  const gone = presence?.gone;
  if (gone === undefined) {
    if (presence !== undefined) figures.stillPublished += 1;
    continue;
  }
  figures.outOfFile.push(Math.max(0, gone - shutdownAt));
  figures.margins.push(exit - gone);
  if (gone < exit) figures.beforeExit += 1;
  if (gone < exit - SERVES_AFTER_TERM_MS) figures.beforeSignal += 1;
  if (process.env.BENCH_DEBUG)
    say(`DEBUG ${kind} ${id.slice(0, 8)} gone +${gone - shutdownAt} exit +${(exit - shutdownAt).toFixed(0)}`);
}
const calls = after.calls - before.calls;
const publishes = after.renderCount - before.renderCount;
const renderMs = publishes > 0 ? ((after.renderSum - before.renderSum) / publishes) * 1000 : NaN;
// Traefik's provider: a change is seen at the next 15 s poll, whatever its phase.
const POLL_MS = 15_000;
const traefikBeforeExit =
  shutdownToExit.reduce((sum, d) => sum + Math.min(1, Math.max(0, d) / POLL_MS), 0) /
  Math.max(1, shutdownToExit.length);
const allToFile = [...toFile.values()].flat();
say(
  `the observer's GET /tasks (every task) during the churn: p50 ${pct(listMs, 50).toFixed(0)} ms, p99 ${pct(listMs, 99).toFixed(0)} ms`,
);
say(
  `churn over ${(churnMs / 1000).toFixed(0)} s: running → file over ${allToFile.length} tasks p50 ${pct(allToFile, 50).toFixed(0)} ms, p99 ${pct(allToFile, 99).toFixed(0)} ms (±100 ms task listing); ` +
    [...toFile]
      .map(
        ([step, xs]) =>
          `${step}: ${xs.length} tasks, p50 ${pct(xs, 50).toFixed(0)}, p99 ${pct(xs, 99).toFixed(0)}, max ${Math.max(...xs).toFixed(0)} ms`,
      )
      .join('; '),
);
say(
  `running (the task's status timestamp) → file over ${stampToFile.length} tasks: p50 ${pct(stampToFile, 50).toFixed(0)} ms, p99 ${pct(stampToFile, 99).toFixed(0)} ms, max ${Math.max(...stampToFile).toFixed(0)} ms, min ${Math.min(...stampToFile).toFixed(0)} ms`,
);
say(
  `container start event → file over ${startToFile.length} tasks: p50 ${pct(startToFile, 50).toFixed(0)} ms, p99 ${pct(startToFile, 99).toFixed(0)} ms, max ${Math.max(...startToFile).toFixed(0)} ms; ` +
    `start event → the agent's running: p50 ${pct(startToStamp, 50).toFixed(0)} ms, p99 ${pct(startToStamp, 99).toFixed(0)} ms, max ${Math.max(...startToStamp).toFixed(0)} ms`,
);
/** The smallest bucket bound holding share p of a histogram's observations during the churn (cumulative buckets). */
const bound = (afterBuckets: Map<string, number>, beforeBuckets: Map<string, number> | undefined, p: number) => {
  const during = [...afterBuckets].map(([le, n]) => [le, n - (beforeBuckets?.get(le) ?? 0)] as const);
  const total = during.find(([le]) => le === '+Inf')?.[1] ?? 0;
  return total === 0 ? '?' : (during.find(([, n]) => n >= p * total)?.[0] ?? '?');
};
const convergenceBound = (p: number) => bound(after.convergence, before.convergence, p);
loopDelay.disable();
say(
  `  of which the start event's delivery to the observer: p50 ${pct(startToRead, 50).toFixed(0)} ms, p99 ${pct(startToRead, 99).toFixed(0)} ms, max ${Math.max(...startToRead).toFixed(0)} ms; ` +
    `the router's own path (a change seen → file in place, its histogram over the churn's publishes): p50 ≤ ${convergenceBound(0.5)} s, p99 ≤ ${convergenceBound(0.99)} s`,
);
const startCount = (stage: string) => {
  const inf = (buckets: Map<string, number> | undefined) => buckets?.get('+Inf') ?? 0;
  return inf(after.startStages.get(stage)) - inf(before.startStages.get(stage));
};
say(
  `the router's start trace over ${startCount('total')} local starts, bucket bounds p50 / p99 (s): ` +
    START_STAGES.map((stage) => {
      const [a, b] = [after.startStages.get(stage)!, before.startStages.get(stage)];
      return `${stage} ≤ ${bound(a, b, 0.5)} / ≤ ${bound(a, b, 0.99)}`;
    }).join(', ') +
    `; the routes file's write (fsync, rename) p50 ≤ ${bound(after.write, before.write, 0.5)}, p99 ≤ ${bound(after.write, before.write, 0.99)} s` +
    `; the router's event-loop delay p50 ${(loopDelay.percentile(50) / 1e6).toFixed(0)} ms, p99 ${(loopDelay.percentile(99) / 1e6).toFixed(0)} ms, max ${(loopDelay.max / 1e6).toFixed(0)} ms`,
);
const at = (ms: number | undefined) => (ms === undefined ? '?' : `+${(ms - t0).toFixed(0)}`);
for (const slow of slowStarts.sort((a, b) => b.toFile - a.toFile).slice(0, 5))
  say(
    `  slow start ${slow.id.slice(0, 8)} (${slow.step}): start event ${at(slow.started)}, read ${at(slow.read)}, in the file ${at(slow.first)} (${slow.toFile.toFixed(0)} ms), agent's running ${at(slow.stamp)} ms`,
  );
const flapped = [...inFile.values()].filter((entry) => entry.flaps > 0);
say(
  `addresses that left the file and came back during the churn: ${flapped.length} (${flapped.reduce((n, e) => n + e.flaps, 0)} times)`,
);
// Which tasks held each such address, to tell a serving task taken out from an address reused.
for (const [ip, entry] of inFile) {
  if (entry.flaps === 0) continue;
  const holders = [...seen]
    .filter(([, task]) => task.ip === ip)
    .map(
      ([id, task]) =>
        `${id.slice(0, 8)} (${kindOf(task.service) ?? 'steady'}${baseline.has(id) ? ', baseline' : ''}, running +${task.runningAt === undefined ? '?' : task.runningAt - t0}, shutdown +${task.shutdownAt === undefined ? '-' : task.shutdownAt - t0}, exit +${task.container === undefined || !exitAt.has(task.container) ? '-' : (exitAt.get(task.container)! - t0).toFixed(0)})`,
    );
  say(
    `  ${ip}: out and back ${entry.flapsAt.map(([gone, back]) => `+${gone - t0}..+${back - t0} ms`).join(', ')}; held by ${holders.join(', ')}`,
  );
}
for (const [kind, f] of stops) {
  if (f.stopped === 0) continue;
  say(
    `${kind}: shutdown → out of file over ${f.outOfFile.length} of ${f.stopped} stopped tasks: p50 ${pct(f.outOfFile, 50).toFixed(0)} ms, p99 ${pct(f.outOfFile, 99).toFixed(0)} ms; ` +
      `gone before SIGTERM ${f.beforeSignal}, before exit ${f.beforeExit} of ${f.stopped} (${((100 * f.beforeExit) / f.stopped).toFixed(1)} %), smallest margin to exit ${Math.min(...f.margins).toFixed(0)} ms; still published at the end: ${f.stillPublished}`,
  );
}
say(
  `router: ${((calls / churnMs) * 60_000).toFixed(0)} Docker API calls/min, ${publishes} publishes at ${renderMs.toFixed(1)} ms render each, peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB`,
);
say(
  `Traefik's 15 s poll on the same cluster: running → file p50 7500 ms, p99 14850 ms; ${(traefikBeforeExit * 100).toFixed(1)} % of old servers gone before exit (expected, from the measured shutdown → exit); ${(((3 + SERVICES) / 15) * 60).toFixed(0)} calls/min`,
);
const callsByKind = Object.entries(after.byKind).map(([kind, n]) => `${kind} ${n - (before.byKind[kind] ?? 0)}`);
say(`router: API calls during the churn by kind: ${callsByKind.join(', ')}`);
// Code before stop hints (406bd96) has no stopHints: printed empty.
const delta = (a: object | undefined, b: object | undefined) =>
  Object.entries((a ?? {}) as Record<string, number>)
    .map(([k, n]) => `${k} ${n - ((b as Record<string, number>)[k] ?? 0)}`)
    .join(', ');
say(
  `router, during the churn: start hints ${delta(after.startHints, before.startHints)}; stop hints ${delta(after.stopHints, before.stopHints)}`,
);
await destroy();
process.exit(0);
