/**
 * The whole system under load and faults, with a table of what was lost (nothing) at the end.
 *
 *   npm run soak                       # 30 minutes
 *   npm run soak -- --minutes 5        # any length
 *   npm run soak:ci                    # the CI variant: every fault once, a few minutes
 *
 * It starts the harness's swarm, PostgreSQL and Redis, two instances of the service (router +
 * metrics) sharing them, labelled services with routing rows, feed readers and stalled clients,
 * then churns services and rows while injecting the faults of faults.ts in turn and, between
 * them, a flood of bad input. It exits non-zero on any loss, stale or missing route, crash,
 * injected route, or fault the service did not recover from.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import pino from 'pino';
import { createPool } from '../src/db/index.js';
import { freePort, missingTools, waitFor } from '../test/harness/index.js';
import {
  checkRowsRejected,
  createInjectingService,
  emptyBadInputStats,
  fuzzedRows,
  httpFlood,
  INJECTION_MARK,
  insertFuzzedRows,
  redisForgery,
  websocketFlood,
} from './bad-input.js';
import { NETWORK, startCluster } from './cluster.js';
import { FAULTS, mountRoutesTmpfs, unmountRoutesTmpfs, type FaultContext } from './faults.js';
import { FeedReader, feedToken, StalledClient } from './feed-clients.js';
import { ServiceInstance, type HealthBody } from './instance.js';
import { checkMetrics, type Interval } from './metrics-check.js';
import { printReport, type FaultRecord, type SoakResult } from './report.js';
import { FileReader, LagTracker } from './route-observers.js';
import { SampleRecorder } from './sample-recorder.js';
import {
  compareRoutes,
  computeTruth,
  documentFromKeys,
  parseRoutesFile,
  publishedRoutes,
  same,
  type Difference,
  type Published,
} from './truth.js';
import { Workload } from './workload.js';

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    ci: { type: 'boolean', default: false },
    deployments: { type: 'string' },
    seed: { type: 'string', default: '1' },
  },
});
const ci = args.ci;
const minutes = ci ? 0 : Number(args.minutes);
const deploymentCount = Number(args.deployments ?? (ci ? 8 : 16));
const TOKEN = 'soak-traefik-token-0123456789';
const SECRET = 'soak-feed-secret-0123456789abcdef0123456789';
const INTERVAL_MS = 5_000;
const RESYNC_SECONDS = 10;
const REDIS_ROOT = 'traefik';

if (missingTools(['root', 'dockerd', 'docker', 'busybox', 'redis-server', 'postgres'])) process.exit(1);

const silentLog = pino({ level: 'silent' });
const random = mulberry32(Number(args.seed));
const dir = mkdtempSync('/tmp/swarm-edge-soak-');
const log = (message: string) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${message}\n`);
const t0 = Date.now();

log(
  `soak: ${ci ? 'CI variant (every fault once)' : `${minutes} minutes`}, ${deploymentCount} deployments, output in ${dir}`,
);
const cluster = await startCluster(['a', 'b']);
// The service's own pool: it follows the primary through the failover fault, as the service does.
const db = createPool({ connectionString: cluster.routingUrl, applicationName: 'soak', max: 4 }, silentLog);
const instances: ServiceInstance[] = [];
const readers: FeedReader[] = [];
const stalled: StalledClient[] = [];
const recorder = new SampleRecorder(cluster.redis.clientOptions);
let exitCode = 1;
try {
  for (const name of ['a', 'b']) {
    const instance = new ServiceInstance(
      name,
      await freePort(),
      {
        LOG_LEVEL: 'info',
        DATABASE_URL: cluster.routingUrl,
        METRICS_DATABASE_URL: cluster.metricsUrls.get(name)!,
        REDIS_URL: cluster.redis.url,
        TRAEFIK_REDIS_ROOT: REDIS_ROOT,
        DOCKER_HOST: cluster.swarm.dockerHost,
        TRAEFIK_NETWORK: NETWORK,
        TRAEFIK_HTTP_TOKEN: TOKEN,
        FEED_JWT_SECRET: SECRET,
        FEED_MAX_BUFFERED_BYTES: '16384',
        FEED_SLOW_GRACE_SECONDS: '2',
        METRICS_INTERVAL_SECONDS: String(INTERVAL_MS / 1000),
        DISCOVERY_RESYNC_SECONDS: String(RESYNC_SECONDS),
        STATS_SOURCE: 'cgroup',
      },
      dir,
    );
    instances.push(instance);
    if (name === 'a') {
      mkdirSync(instance.dynamicDir, { recursive: true });
      mountRoutesTmpfs(instance.dynamicDir);
    }
    instance.start();
  }
  await Promise.all(instances.map((i) => i.ready()));
  // The schema is migrated in the background: rows can be seeded once PostgreSQL is up.
  await waitFor(
    'the schema migrated',
    async () => (await instances[0]!.health())?.dependencies.postgres?.status === 'up',
    60_000,
    200,
  );
  await recorder.start();
  log(`instances up: ${instances.map((i) => `${i.name} on :${i.port}`).join(', ')}`);

  const deployments = Array.from({ length: deploymentCount }, (_, i) => `soak-d${i}`);
  const workload = new Workload(cluster.swarm.docker, db, cluster.swarm.image, deployments, random);
  await workload.seed();
  await createInjectingService(cluster.swarm.docker, cluster.swarm.image);
  log(`seeded ${deployments.length} services and rows, and a service with an injecting label`);

  // Observers.
  const faults: FaultRecord[] = [];
  let activeFault: FaultRecord | undefined;
  let faultEndedAt = 0;
  // A fault is under way from its start until 10 s after the service is healthy again.
  const faultActive = () => activeFault !== undefined || Date.now() - faultEndedAt < 10_000;
  const isInjected = (key: string) => key.includes(INJECTION_MARK);
  const fileReaders = new Map(instances.map((i) => [i, new FileReader(i, isInjected)]));
  for (const reader of fileReaders.values()) reader.start();
  const lag = new LagTracker(cluster.swarm.docker, db, NETWORK, fileReaders, faultActive);
  lag.start();
  const health = new Map<string, HealthBody | undefined>();
  const healthTimer = setInterval(() => {
    for (const instance of instances) {
      void instance.health().then((body) => {
        health.set(instance.name, body);
        // Did the service say so? The fault's dependency reported down by an instance.
        const fault = activeFault;
        if (
          fault?.dependency !== undefined &&
          fault.recoveredAt === undefined &&
          body?.dependencies[fault.dependency]?.status === 'down'
        )
          fault.reported = true;
      });
    }
  }, 250);
  const sampler = setInterval(() => {
    for (const instance of instances) void instance.sample();
  }, 2_000);
  const readerToken = await feedToken(SECRET, ['*']);
  for (const instance of instances) {
    for (let k = 0; k < 2; k++) readers.push(new FeedReader(instance, readerToken, workload.steady));
    stalled.push(new StalledClient(instance, readerToken, deployments));
  }
  for (const client of [...readers, ...stalled]) client.start();

  const allHealthy = () => instances.every((i) => i.running && health.get(i.name)?.status === 'ok');
  const waitHealthy = async (timeoutMs = 180_000): Promise<number | undefined> => {
    const deadline = Date.now() + timeoutMs;
    health.clear();
    while (Date.now() < deadline) {
      if (allHealthy()) return Date.now();
      await sleep(100);
    }
    return undefined;
  };
  log('waiting for both instances to be healthy and the routes published');
  if ((await waitHealthy()) === undefined)
    throw new Error(`instances not healthy: ${JSON.stringify(Object.fromEntries(health))}`);

  workload.start(ci ? 1_000 : 1_500);
  const badInput = emptyBadInputStats();
  const termExitCodes: Array<number | null> = [];
  const ctx: FaultContext = {
    cluster,
    instances,
    outageMs: ci ? 20_000 : 75_000,
    slowMs: ci ? 75_000 : 130_000,
    termExitCodes,
  };
  const settleMs = ci ? 10_000 : 45_000;
  const endAt = t0 + minutes * 60_000;
  let round = 0;

  const floodBadInput = async () => {
    round += 1;
    const rows = fuzzedRows(round, workload.steady[0]!, random);
    await insertFuzzedRows(db, rows);
    for (const instance of instances) {
      await websocketFlood(instance, SECRET, deployments, badInput.websocket);
      await httpFlood(instance, badInput.http);
    }
    await redisForgery(cluster.redis.clientOptions, instances, workload.steady[0]!, badInput.redis);
    await sleep(3_000);
    for (const instance of instances) await checkRowsRejected(instance, TOKEN, rows, badInput.rows);
  };

  // Faults in turn, bad input between them, until every fault ran once (CI) or the time is up.
  for (let i = 0; ci ? i < FAULTS.length : Date.now() < endAt; i++) {
    const fault = FAULTS[i % FAULTS.length]!;
    await sleep(settleMs);
    log(`bad input, round ${round + 1}`);
    await floodBadInput();
    log(`fault: ${fault.name}`);
    const record: FaultRecord = {
      name: fault.name,
      affects: fault.affects,
      dependency: fault.dependency,
      reported: false,
      start: Date.now(),
      restoredAt: 0,
      recoveredAt: undefined,
    };
    activeFault = record;
    await fault.run(ctx);
    record.restoredAt = Date.now();
    record.recoveredAt = await waitHealthy();
    faultEndedAt = record.recoveredAt ?? Date.now();
    activeFault = undefined;
    faults.push(record);
    log(
      `  restored after ${((record.restoredAt - record.start) / 1000).toFixed(1)} s, healthy ${record.recoveredAt === undefined ? 'NEVER' : `${((record.recoveredAt - record.restoredAt) / 1000).toFixed(1)} s later`}`,
    );
  }

  log('stopping churn; waiting for a resync and comparing every published copy with the truth');
  await workload.stop();
  await sleep(settleMs);
  const finalRoutes = await finalComparison(instances, RESYNC_SECONDS * 1000 + 5_000);
  lag.stop();
  for (const reader of fileReaders.values()) await reader.stop();
  // The service with the injecting label: counted as invalid by each collector, routed nowhere.
  for (const instance of instances) {
    const report = (await (await fetch(`${instance.baseUrl}/metrics/observability`)).json()) as {
      containers?: { invalidLabels?: number };
    };
    badInput.labels.tried += 1;
    if ((report.containers?.invalidLabels ?? 0) > 0 && finalRoutes.injected === 0) badInput.labels.rejectedRight += 1;
    else
      badInput.labels.wrong.push(`${instance.name}: invalid labels counted ${report.containers?.invalidLabels ?? 0}`);
  }

  // Readers and stalled clients: what the server saw of them.
  let slowClosed = 0;
  for (const instance of instances) {
    const report = (await (await fetch(`${instance.baseUrl}/metrics/observability`)).json()) as {
      feed: { slowDisconnects: number };
    };
    slowClosed += report.feed.slowDisconnects;
  }
  for (const client of [...readers, ...stalled]) client.stop();

  // Stop both instances (SIGTERM: finished windows written), then check what they stored.
  for (const instance of instances) termExitCodes.push(await instance.terminate());
  clearInterval(healthTimer);
  clearInterval(sampler);
  await sleep(1_000);
  recorder.stop();
  const dockerdDown: Interval[] = faults
    .filter((f) => f.affects === 'docker')
    .map((f) => ({ from: f.start, to: (f.recoveredAt ?? f.restoredAt) + 20_000 }));
  const metrics = new Map<string, Awaited<ReturnType<typeof checkMetrics>>>();
  for (const instance of instances) {
    metrics.set(
      instance.name,
      await checkMetrics(
        cluster.postgres.primaryUrl(`metrics_${instance.name}`),
        instance.lifetimes,
        dockerdDown,
        recorder,
        INTERVAL_MS,
      ),
    );
  }

  const faultWindows = faults.map((f) => ({ from: f.start, to: (f.recoveredAt ?? f.restoredAt) + 10_000 }));
  const result: SoakResult = {
    command: process.argv.slice(1).join(' '),
    durationMs: Date.now() - t0,
    deployments: deploymentCount,
    churn: workload.stats,
    faults,
    finalRoutes,
    files: [...fileReaders].map(([instance, reader]) => ({ instance: instance.name, ...reader.stats })),
    lag: [...lag.stats].map(([instance, stats]) => ({ instance, ...stats })),
    metrics: [...metrics].map(([instance, check]) => ({ instance, ...check })),
    feed: {
      readers: readers.length,
      samplesReceived: readers.reduce((n, r) => n + r.distinctSamples(), 0),
      readerGaps: readers.flatMap((r) => r.gaps()),
      duplicates: readers.reduce((n, r) => n + r.duplicates, 0),
      resumeViolations: readers.reduce((n, r) => n + r.resumeViolations, 0),
      resumesRecovered: readers.reduce((n, r) => n + r.resumesRecovered, 0),
      resumesFull: readers.reduce((n, r) => n + r.resumesFull, 0),
      faultWindows,
      intervalMs: INTERVAL_MS,
      stalledConnects: stalled.reduce((n, s) => n + s.connects, 0),
      stalledClosed: stalled.reduce((n, s) => n + s.closes, 0),
      slowClosedByServer: slowClosed,
    },
    instances: instances.map((i) => ({
      name: i.name,
      lifetimes: i.lifetimes.map((l) => ({
        end: l.end,
        exitCode: l.exitCode,
        peakRssBytes: l.peakRssBytes,
        droppedRows: l.droppedRows,
      })),
    })),
    termExitCodes,
    badInput,
    recorderMessages: recorder.messages,
  };
  writeFileSync(path.join(dir, 'result.json'), JSON.stringify(result, null, 1));
  const failures = printReport(result, (line) => process.stdout.write(`${line}\n`));
  exitCode = failures.length === 0 ? 0 : 1;
  log(failures.length === 0 ? 'soak passed: nothing lost' : `soak FAILED:\n  - ${failures.join('\n  - ')}`);
  log(`logs and result.json in ${dir}`);
} catch (error) {
  log(`soak aborted: ${(error as Error).stack ?? String(error)}`);
  for (const instance of instances) log(`--- ${instance.name} (last output)\n${instance.output().slice(-3000)}`);
} finally {
  for (const client of [...readers, ...stalled]) client.stop();
  recorder.stop();
  for (const instance of instances) {
    await instance.kill();
    instance.close();
  }
  if (instances[0]) unmountRoutesTmpfs(instances[0].dynamicDir);
  await db.end().catch(() => undefined);
  await cluster.destroy();
}
process.exit(exitCode);

/**
 * After the last fault and a resync: the file and HTTP provider of each instance and the Redis
 * tree all equal the truth (retried for a while: tasks may still be settling).
 */
async function finalComparison(list: readonly ServiceInstance[], withinMs: number): Promise<SoakResult['finalRoutes']> {
  const deadline = Date.now() + withinMs + 30_000;
  await sleep(withinMs);
  const redis = new Redis({ ...cluster.redis.clientOptions, maxRetriesPerRequest: 1 });
  let last: Array<{ copy: string; difference: Difference; routes: number }> = [];
  let truthSize = 0;
  let injected = 0;
  try {
    for (;;) {
      const truth = await computeTruth(cluster.swarm.docker, db, NETWORK);
      truthSize = truth.size;
      const copies: Array<[string, ReturnType<typeof publishedRoutes>]> = [];
      for (const instance of list) {
        copies.push([`${instance.name} file`, publishedRoutes(parseRoutesFile(await readFile(instance.file, 'utf8')))]);
        const response = await fetch(`${instance.baseUrl}/traefik/dynamic`, {
          headers: { authorization: `Bearer ${TOKEN}` },
        });
        copies.push([`${instance.name} HTTP`, publishedRoutes((await response.json()) as Published)]);
      }
      const keys = await redis.keys(`${REDIS_ROOT}/*`);
      const values = keys.length > 0 ? await redis.mget(...keys) : [];
      copies.push([
        'Redis',
        publishedRoutes(documentFromKeys(new Map(keys.map((k, i) => [k, values[i] ?? ''])), REDIS_ROOT)),
      ]);
      last = copies.map(([copy, routes]) => ({ copy, difference: compareRoutes(truth, routes), routes: routes.size }));
      injected = copies.reduce(
        (n, [, routes]) => n + [...routes.keys()].filter((k) => k.includes(INJECTION_MARK)).length,
        0,
      );
      if (last.every((c) => same(c.difference)) || Date.now() > deadline) break;
      await sleep(1_000);
    }
  } finally {
    redis.disconnect();
  }
  return { truthRoutes: truthSize, copies: last, injected };
}

/** A small seeded PRNG, so a run's churn and fuzz can be replayed with --seed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
