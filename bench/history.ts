/**
 * The history API on a real PostgreSQL (the harness's, plain path) holding 30 days of minute rows
 * for 1,000 containers (100 deployments of 10): 43.2 million rows, with the hourly rollup the
 * service maintains. Under autocannon, through the service's own route and SQL:
 *   - 24 h of one deployment at 1 m with the schema's covering index, then with the plain
 *     (deployment_id, bucket) index of earlier versions, then with neither (what is left is the
 *     primary key and the BRIN on bucket);
 *   - 7 d of one deployment at 1 h from the rollup, against the same buckets re-cut from minute rows.
 * Rounds alternate the cases; each round picks other deployments so no answer is only cached.
 *
 *   npx tsx bench/history.ts     # BENCH_DAYS=30 BENCH_CONTAINERS=1000 BENCH_SECONDS=8 BENCH_ROUNDS=3
 */
import autocannon from 'autocannon';
import Fastify from 'fastify';
import pino from 'pino';
import { createPool } from '../src/db/index.js';
import { createFeedAuthenticator } from '../src/feed/feed-auth.js';
import type { HistoryPlan } from '../src/history/history-params.js';
import { RequestHistory } from '../src/traffic/index.js';
import { NodeHistory } from '../src/nodes/index.js';
import { HistoryService } from '../src/history/history-service.js';
import { registerHistoryRoutes } from '../src/http/index.js';
import { AggregateStore } from '../src/metrics/index.js';
import { createPartitionStatement, ROLLUP_HOURS } from '../src/metrics/storage-schema.js';
import { startPostgres } from '../test/harness/index.js';

const DAYS = Number(process.env.BENCH_DAYS ?? 30);
const CONTAINERS = Number(process.env.BENCH_CONTAINERS ?? 1000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const PER_DEPLOYMENT = 10;
const DAY = 86_400_000;
const log = pino({ level: 'silent' });

const postgres = await startPostgres();
const pool = createPool(
  { connectionString: postgres.url, applicationName: 'bench', statementTimeoutMs: 3_600_000, max: 8 },
  log,
);
const say = (line: string) => process.stdout.write(`${line}\n`);
try {
  const store = new AggregateStore(
    {
      bufferMaxRows: 10,
      batchRows: 10,
      retentionDays: DAYS + 1,
      rollupRetentionDays: 365,
      statementTimeoutMs: 3_600_000,
    },
    { pool, log },
  );
  await store.maintain();
  const end = Math.floor(Date.now() / 60_000) * 60_000;
  const start = Math.floor((end - DAYS * DAY) / DAY) * DAY;
  const seeded = Date.now();
  for (let day = start; day < end; day += DAY) {
    await pool.query(createPartitionStatement(new Date(day)));
    // Minute by minute across all containers, as collectors write them.
    await pool.query(
      `INSERT INTO container_metrics (bucket, container_id, deployment_id, node_id, service_id, cpu_avg, cpu_max,
         memory_avg, memory_max, net_rx_bytes, net_tx_bytes, block_read_bytes, block_write_bytes, samples)
       SELECT m, lpad(to_hex(c), 64, '0'), 'dep-' || (c / ${PER_DEPLOYMENT}), 'node-' || (c % 20), 'svc-' || (c / ${PER_DEPLOYMENT}),
              10 + (c % 7) + random() * 5, 40, 100000000 + c * 1000, 120000000 + c * 1000, 60000 + c, 30000, 0, 4096, 12
       FROM generate_series($1::timestamptz, $2::timestamptz - interval '1 minute', interval '1 minute') m,
            generate_series(0, ${CONTAINERS - 1}) c`,
      [new Date(day), new Date(Math.min(day + DAY, end))],
    );
    await pool.query(ROLLUP_HOURS, [new Date(day), new Date(Math.min(day + DAY, end))]);
    process.stdout.write('.');
  }
  // Autovacuum marks an append-only table's pages all-visible soon after they fill (PostgreSQL 13+
  // vacuums on inserts); index-only scans need that. The bench does it at once.
  await pool.query('VACUUM (ANALYZE) container_metrics');
  await pool.query('ANALYZE deployment_metrics_hourly');
  const { rows: size } = await pool.query<{ rows: string; bytes: string }>(
    `SELECT (SELECT count(*) FROM container_metrics)::text AS rows,
            (SELECT sum(pg_total_relation_size(c.oid)) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
              WHERE i.inhparent = 'container_metrics'::regclass)::text AS bytes`,
  );
  say(
    `\nseeded ${Number(size[0]!.rows).toLocaleString('en')} minute rows (${(Number(size[0]!.bytes) / 2 ** 30).toFixed(1)} GiB with indexes) in ${((Date.now() - seeded) / 1000).toFixed(0)} s`,
  );

  const history = new HistoryService({
    metricsPool: pool,
    storageKind: () => store.storageKind(),
    locations: { pool, isReady: () => true },
  });
  /** The same route, answering every plan from minute rows: the baseline without the rollup. */
  const withoutRollup = Object.assign(Object.create(history) as HistoryService, {
    query: (plan: HistoryPlan) => history.query({ ...plan, resolution: 'minute' }),
  });
  const authenticate = createFeedAuthenticator({
    mode: 'none',
    secret: undefined,
    jwksUrl: undefined,
    issuer: undefined,
    audience: undefined,
  });
  const serve = async (service: HistoryService) => {
    const app = Fastify({ logger: false });
    registerHistoryRoutes(app, {
      history: service,
      requests: new RequestHistory({ metricsPool: pool, storageKind: () => 'postgres' }),
      nodes: new NodeHistory({ metricsPool: pool, storageKind: () => 'postgres' }),
      authenticate,
      retentionDays: DAYS + 1,
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    return { app, base: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}` };
  };
  const main = await serve(history);
  const baseline = await serve(withoutRollup);

  const deployments = CONTAINERS / PER_DEPLOYMENT;
  let pick = 0;
  const measure = async (base: string, range: number, step: string, connections: number) => {
    // Each request a different deployment: no answer is served twice in a row from cache.
    const paths = Array.from({ length: deployments }, (_, d) => {
      const to = end - ((pick + d) % 60) * 60_000;
      return `/api/v1/deployments/dep-${(pick + d) % deployments}/metrics?from=${to - range}&to=${to}&step=${step}`;
    });
    pick += 7;
    let i = 0;
    const result = await autocannon({
      url: base,
      connections,
      duration: SECONDS,
      requests: [{ setupRequest: (request) => ({ ...request, path: paths[i++ % paths.length]! }) }],
    });
    if (result.non2xx + result.errors > 0) throw new Error(`${result.non2xx} non-2xx, ${result.errors} errors`);
    return { p50: result.latency.p50, p99: result.latency.p99, rps: result.requests.average };
  };
  const row = (name: string, r: { p50: number; p99: number; rps: number }) =>
    say(
      `  ${name.padEnd(44)} p50 ${String(r.p50).padStart(5)} ms  p99 ${String(r.p99).padStart(5)} ms  ${r.rps.toFixed(0)} req/s`,
    );

  type Figures = { p50: number; p99: number; rps: number };
  const indexed: Array<{ day1: Figures; day4: Figures; weekRollup: Figures; weekMinutes: Figures }> = [];
  say('with the covering index (the schema):');
  for (let round = 1; round <= ROUNDS; round++) {
    say(`round ${round}`);
    const r = {
      day1: await measure(main.base, DAY, '1m', 1),
      day4: await measure(main.base, DAY, '1m', 4),
      weekRollup: await measure(main.base, 7 * DAY, '1h', 4),
      weekMinutes: await measure(baseline.base, 7 * DAY, '1h', 4),
    };
    row('24 h at 1 m, covering index, 1 connection', r.day1);
    row('24 h at 1 m, covering index, 4 connections', r.day4);
    row('7 d at 1 h, rollup, 4 connections', r.weekRollup);
    row('7 d at 1 h, minute rows (baseline), 4 conn.', r.weekMinutes);
    indexed.push(r);
  }
  const rebuild = async (statement: string | undefined) => {
    const t = Date.now();
    await pool.query('DROP INDEX IF EXISTS container_metrics_deployment_cover_idx');
    await pool.query('DROP INDEX IF EXISTS container_metrics_deployment_idx');
    if (statement) await pool.query(statement);
    await pool.query('ANALYZE container_metrics');
    return ((Date.now() - t) / 1000).toFixed(0);
  };
  const built = await rebuild(
    'CREATE INDEX container_metrics_deployment_idx ON container_metrics (deployment_id, bucket DESC)',
  );
  say(`with the plain (deployment_id, bucket) index instead (built in ${built} s):`);
  const plain: Figures[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const one = await measure(main.base, DAY, '1m', 1);
    const r = await measure(main.base, DAY, '1m', 4);
    row(`24 h at 1 m, plain index, 1 conn., round ${round}`, one);
    row(`24 h at 1 m, plain index, 4 conn., round ${round}`, r);
    plain.push(r);
  }
  await rebuild(undefined);
  say('without either index:');
  const unindexed: Figures[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const r = await measure(main.base, DAY, '1m', 4);
    row(`24 h at 1 m, no index (baseline), round ${round}`, r);
    unindexed.push(r);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const day4 = median(indexed.map((r) => r.day4.p99));
  const p99s = (xs: Figures[]) => median(xs.map((r) => r.p99));
  say(
    `summary (medians of ${ROUNDS} rounds, 4 connections unless said): 24 h p99 ${median(indexed.map((r) => r.day1.p99))} ms (1 conn.), ${day4} ms with the covering index; ${p99s(plain)} ms with the plain index; ${p99s(unindexed)} ms with neither (${(p99s(unindexed) / day4).toFixed(1)}×); 7 d p99 ${median(indexed.map((r) => r.weekRollup.p99))} ms from the rollup vs ${median(indexed.map((r) => r.weekMinutes.p99))} ms from minute rows`,
  );
  await main.app.close();
  await baseline.app.close();
} finally {
  await pool.end();
  await postgres.destroy();
}
