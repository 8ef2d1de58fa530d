/**
 * Opt-in (TIMESCALEDB=1): the TimescaleDB path on a real TimescaleDB, which has no package here
 * (the README says how to build 2.28.3 against Debian's PostgreSQL 15). CI does not run it.
 *
 * As a new user would: the store creates the hypertable, the covering history index, the hourly
 * continuous aggregate in real time, and its policies; rows are written, a chunk is compressed and
 * written into again; the history API answers the same figures from minute rows and from the
 * rollup, materialised or not; an install with the older plain index is upgraded in place.
 * Background jobs fail on a self-built server; `CALL run_job(id)` runs a policy once.
 */
import type pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../src/db/index.js';
import { planHistory } from '../../src/history/history-params.js';
import { HistoryService } from '../../src/history/history-service.js';
import { AggregateStore, type AggregateRow } from '../../src/metrics/index.js';
import { SLOT, vectorLength } from '../../src/traffic/figures.js';
import { RequestHistory } from '../../src/traffic/index.js';
import { TrafficStore } from '../../src/traffic/traffic-store.js';
import { NodeHistory } from '../../src/nodes/index.js';
import type { NodeMinuteRow } from '../../src/nodes/node-minutes.js';
import { NodeStore } from '../../src/nodes/node-store.js';
import { missingTools, startPostgres, type TestPostgres } from '../harness/index.js';

const optedIn = process.env.TIMESCALEDB === '1';
const skip = optedIn ? missingTools(['root', 'postgres']) : 'opt-in: set TIMESCALEDB=1';
const log = pino({ level: 'silent' });
const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

function rows(start: number, minutes: number, containers = 3): AggregateRow[] {
  const out: AggregateRow[] = [];
  for (let m = 0; m < minutes; m++)
    for (let c = 0; c < containers; c++)
      out.push({
        bucket: start + m * MINUTE,
        containerId: String(c).repeat(64),
        deploymentId: 'dep-ts',
        nodeId: 'node-1',
        serviceId: 'svc',
        cpuAvg: 10,
        cpuMax: 20,
        memoryAvg: 1_000_000,
        memoryMax: 2_000_000,
        netRxBytes: 100,
        netTxBytes: 10,
        blockReadBytes: 0,
        blockWriteBytes: 1,
        samples: 12,
        cpuThrottledPeriods: 0,
        cpuThrottledSeconds: 0,
        oomKills: 0,
        exits: 0,
      });
  return out;
}

describe.skipIf(skip)('TimescaleDB path (opt-in)', () => {
  let postgres: TestPostgres;
  let pool: pg.Pool;
  let store: AggregateStore;
  const now = Date.now();
  const start = Math.floor(now / HOUR) * HOUR - 3 * DAY;

  beforeAll(async () => {
    postgres = await startPostgres({ preload: ['timescaledb'] });
    pool = createPool({ connectionString: postgres.url, applicationName: 'test', statementTimeoutMs: 30_000 }, log);
    store = new AggregateStore(
      {
        bufferMaxRows: 100_000,
        batchRows: 5_000,
        retentionDays: 14,
        rollupRetentionDays: 365,
        statementTimeoutMs: 30_000,
      },
      { pool, log },
    );
  });
  afterAll(async () => {
    await pool?.end().catch(() => undefined);
    await postgres?.destroy();
  });

  it('creates the hypertable, the covering index, the real-time rollup and its policies', async () => {
    store.enqueue(rows(start, 3 * 24 * 60));
    await store.flush();
    expect(store.storageKind()).toBe('timescaledb');
    expect(store.stats().rowsWritten).toBe(3 * 24 * 60 * 3);
    const { rows: indexes } = await pool.query<{ indexname: string; indexdef: string }>(
      `SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'container_metrics'`,
    );
    expect(indexes.find((i) => i.indexname === 'container_metrics_deployment_cover_idx')?.indexdef).toContain(
      'INCLUDE',
    );
    const { rows: views } = await pool.query<{ materialized_only: boolean }>(
      `SELECT materialized_only FROM timescaledb_information.continuous_aggregates WHERE view_name = 'deployment_metrics_hourly'`,
    );
    expect(views).toEqual([{ materialized_only: false }]);
    const { rows: jobs } = await pool.query<{ proc_name: string; job_id: number }>(
      `SELECT proc_name, job_id FROM timescaledb_information.jobs WHERE hypertable_name IN ('container_metrics', 'deployment_metrics_hourly') OR proc_name = 'policy_refresh_continuous_aggregate' ORDER BY 1`,
    );
    expect(jobs.map((j) => j.proc_name)).toEqual(
      expect.arrayContaining(['policy_refresh_continuous_aggregate', 'policy_retention']),
    );
    // Each policy runs once by hand (background jobs fail on a self-built server).
    for (const job of jobs) await pool.query(`CALL run_job($1)`, [job.job_id]);
  });

  it('answers the same figures from minute rows and from the rollup, for late hours too', async () => {
    const history = new HistoryService({
      metricsPool: pool,
      storageKind: () => store.storageKind(),
      locations: { pool, isReady: () => true },
    });
    const limits = { retentionDays: 14, now };
    const end = start + 3 * DAY;
    // From the 2-hour grid on: the per-container answer below is cut on it (an odd first hour would
    // make its first bucket half as long).
    const gridStart = Math.ceil(start / (2 * HOUR)) * 2 * HOUR;
    const old = { from: String(gridStart), to: String(start + 2 * DAY) };
    const recent = { from: String(end - 2 * HOUR), to: String(end) };
    // Whole hours per deployment: the rollup answers. The recent hours lie past the watermark the
    // policy left (it ran in the first test): real-time aggregation computes them.
    const recentHours = await history.query(planHistory('dep-ts', { ...recent, step: '1h' }, limits));
    expect(recentHours.resolution).toBe('hour');
    expect(new Set(recentHours.deployment!.cpuAvg)).toEqual(new Set([30]));
    // The old hours were written before that refresh and outside its 3-hour window: the store's
    // upkeep materialises them (without it they would stay missing).
    await store.maintain(new Date(now));
    const oldHours = await history.query(planHistory('dep-ts', { ...old, step: '1h' }, limits));
    expect(new Set(oldHours.deployment!.cpuAvg)).toEqual(new Set([30]));
    expect(new Set(oldHours.deployment!.netRxBytes)).toEqual(new Set([100 * 3 * 60]));
    const fromMinutes = await history.query(planHistory('dep-ts', { ...old, step: '2h', per: 'deployment' }, limits));
    expect(fromMinutes.resolution).toBe('hour');
    const perContainer = await history.query(planHistory('dep-ts', { ...old, step: '2h', per: 'container' }, limits));
    expect(perContainer.resolution).toBe('minute');
    expect(perContainer.containers).toHaveLength(3);
    expect(new Set(perContainer.containers![0]!.netRxBytes)).toEqual(new Set([100 * 120]));
  });

  it('writes into a compressed chunk and reads it back through the history API', async () => {
    const { rows: license } = await pool.query<{ license: string }>(
      `SELECT current_setting('timescaledb.license') AS license`,
    );
    if (license[0]!.license === 'apache') return;
    const { rows: compressed } = await pool.query(
      `SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks('container_metrics', older_than => $1::timestamptz) c`,
      [new Date(start + DAY)],
    );
    expect(compressed.length).toBeGreaterThan(0);
    // A late minute for a new container, inside the compressed day.
    const late = rows(start + 30 * MINUTE, 1, 1).map((r) => ({ ...r, containerId: 'f'.repeat(64) }));
    store.enqueue(late);
    await store.flush();
    expect(store.stats().lastError).toBeUndefined();
    const history = new HistoryService({
      metricsPool: pool,
      storageKind: () => store.storageKind(),
      locations: { pool, isReady: () => true },
    });
    const answer = await history.query(
      planHistory(
        'dep-ts',
        { from: String(start), to: String(start + HOUR), step: '1h', per: 'container' },
        { retentionDays: 14, now },
      ),
    );
    expect(answer.containers!.map((c) => c.containerId)).toContain('f'.repeat(64));
  });

  it('replaces the plain index of an older install by the covering one', async () => {
    const url = await postgres.createDatabase('upgrade');
    const upgradePool = createPool({ connectionString: url, applicationName: 'test', statementTimeoutMs: 30_000 }, log);
    try {
      await upgradePool.query('CREATE EXTENSION IF NOT EXISTS timescaledb');
      await upgradePool.query(`CREATE TABLE container_metrics (bucket timestamptz NOT NULL, container_id text NOT NULL, deployment_id text NOT NULL,
        node_id text NOT NULL, service_id text, cpu_avg double precision, cpu_max double precision, memory_avg bigint, memory_max bigint,
        net_rx_bytes bigint NOT NULL, net_tx_bytes bigint NOT NULL, block_read_bytes bigint NOT NULL, block_write_bytes bigint NOT NULL,
        samples integer NOT NULL, PRIMARY KEY (container_id, bucket))`);
      await upgradePool.query(`SELECT create_hypertable('container_metrics', by_range('bucket', INTERVAL '1 day'))`);
      await upgradePool.query(
        `CREATE INDEX container_metrics_deployment_idx ON container_metrics (deployment_id, bucket DESC)`,
      );
      const upgraded = new AggregateStore(
        {
          bufferMaxRows: 10_000,
          batchRows: 5_000,
          retentionDays: 14,
          rollupRetentionDays: 365,
          statementTimeoutMs: 30_000,
        },
        { pool: upgradePool, log },
      );
      upgraded.enqueue(rows(start, 10));
      await upgraded.flush();
      const { rows: names } = await upgradePool.query<{ indexname: string }>(
        `SELECT indexname FROM pg_indexes WHERE tablename = 'container_metrics' ORDER BY 1`,
      );
      expect(names.map((n) => n.indexname)).toContain('container_metrics_deployment_cover_idx');
      expect(names.map((n) => n.indexname)).not.toContain('container_metrics_deployment_idx');
    } finally {
      await upgradePool.end();
    }
  });

  it('keeps request metrics to the same standard: hypertables, real-time rollups, policies, writes into a compressed chunk', async () => {
    const traffic = new TrafficStore(
      { retentionDays: 14, rollupRetentionDays: 365, statementTimeoutMs: 30_000 },
      { pool, kind: () => store.storageKind(), log },
    );
    const bounds = [0.1, 0.5, Infinity];
    const vector = (requests: number) => {
      const v = new Float64Array(vectorLength(bounds.length));
      v[SLOT.status + 1] = requests;
      v[SLOT.durationCount] = requests;
      v[SLOT.durationSum] = requests * 0.2;
      v[SLOT.buckets] = requests / 2;
      v[SLOT.buckets + 1] = requests;
      v[SLOT.buckets + 2] = requests;
      return v;
    };
    const minute = start + 30 * MINUTE;
    const work = (baseSeq: number, requests: number) => ({
      target: 'http://traefik.test:8082/metrics',
      baseSeq,
      minutes: [{ minute, byDeployment: new Map([['dep-ts', { bounds, vector: vector(requests) }]]) }],
      snapshot: { startTime: 1, bounds, services: new Map() },
    });
    expect(await traffic.write(work(0, 10), 'test')).toMatchObject({ ok: true, seq: 1 });
    const { rows: hypertables } = await pool.query<{ hypertable_name: string }>(
      `SELECT hypertable_name FROM timescaledb_information.hypertables WHERE hypertable_name LIKE 'request_%' ORDER BY 1`,
    );
    expect(hypertables.map((h) => h.hypertable_name)).toEqual(['request_latency', 'request_metrics']);
    const { rows: views } = await pool.query<{ view_name: string; materialized_only: boolean }>(
      `SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates WHERE view_name LIKE 'deployment_%_hourly' AND view_name <> 'deployment_metrics_hourly' ORDER BY 1`,
    );
    expect(views).toEqual([
      { view_name: 'deployment_latency_hourly', materialized_only: false },
      { view_name: 'deployment_requests_hourly', materialized_only: false },
    ]);
    const { rows: jobs } = await pool.query<{ job_id: number; proc_name: string; hypertable_name: string }>(
      `SELECT j.job_id, j.proc_name, coalesce(ca.view_name, j.hypertable_name) AS hypertable_name
         FROM timescaledb_information.jobs j
         LEFT JOIN timescaledb_information.continuous_aggregates ca ON ca.materialization_hypertable_name = j.hypertable_name
        WHERE coalesce(ca.view_name, j.hypertable_name) IN ('request_metrics', 'request_latency', 'deployment_requests_hourly', 'deployment_latency_hourly')`,
    );
    const policies = jobs.map((j) => `${j.hypertable_name}:${j.proc_name}`);
    expect(policies).toEqual(
      expect.arrayContaining([
        'request_metrics:policy_retention',
        'request_latency:policy_retention',
        'deployment_requests_hourly:policy_refresh_continuous_aggregate',
        'deployment_latency_hourly:policy_refresh_continuous_aggregate',
        'deployment_requests_hourly:policy_retention',
      ]),
    );
    for (const job of jobs) await pool.query(`CALL run_job($1)`, [job.job_id]);

    const { rows: license } = await pool.query<{ license: string }>(
      `SELECT current_setting('timescaledb.license') AS license`,
    );
    if (license[0]!.license !== 'apache') {
      for (const table of ['request_metrics', 'request_latency']) {
        const { rows: compressed } = await pool.query(
          `SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks('${table}', older_than => $1::timestamptz) c`,
          [new Date(start + DAY)],
        );
        expect(compressed.length, table).toBeGreaterThan(0);
      }
    }
    // The same target and minute again (a handover's second piece): added into the compressed chunk.
    expect(await traffic.write(work(1, 6), 'test')).toMatchObject({ ok: true, seq: 2 });
    const { rows: sums } = await pool.query<{ requests: string; inf: string }>(
      `SELECT (SELECT sum(requests) FROM request_metrics WHERE deployment_id = 'dep-ts') AS requests,
              (SELECT sum(count) FROM request_latency WHERE deployment_id = 'dep-ts' AND le = 'Infinity') AS inf`,
    );
    expect(sums[0]).toEqual({ requests: '16', inf: '16' });
    await traffic.maintain(new Date(now));
    const history = new RequestHistory({ metricsPool: pool, storageKind: () => store.storageKind() });
    const hour = Math.floor(minute / HOUR) * HOUR;
    const answer = (await history.query(
      planHistory('dep-ts', { from: String(hour), to: String(hour + HOUR), step: '1h' }, { retentionDays: 14, now }),
    ))!;
    expect(answer.resolution).toBe('hour');
    expect(answer.requests).toEqual([16]);
    expect(answer.latencyMs.p50[0]).toBeCloseTo(100, 6);
  });

  it('keeps node minutes to the same standard: hypertable, real-time rollup, policies, writes into a compressed chunk', async () => {
    const nodes = new NodeStore(
      { retentionDays: 14, rollupRetentionDays: 365, bufferMaxMinutes: 100_000 },
      { pool, kind: () => store.storageKind(), log },
    );
    // Ten days back: its week-long chunk has ended, so it can be compressed.
    const first = Math.floor((now - 10 * DAY) / HOUR) * HOUR;
    const minute = (m: number): NodeMinuteRow => ({
      bucket: first + m * MINUTE,
      nodeId: 'node-ts',
      cpuAvg: 25,
      cpuMax: 50,
      load1Avg: 1,
      load1Max: 2,
      memoryTotal: 8e9,
      memoryUsedAvg: 2e9,
      memoryUsedMax: 3e9,
      swapUsedMax: 0,
      diskUsed: 1e10,
      diskTotal: 1e11,
      diskReadBytes: 100,
      diskWriteBytes: 200,
      netRxBytes: 300,
      netTxBytes: 400,
      runningContainersMax: 3,
      runningDeploymentsMax: 2,
      samples: 12,
    });
    nodes.enqueue(Array.from({ length: 120 }, (_, m) => minute(m)));
    await nodes.flush();
    expect(nodes.stats().minutesWritten).toBe(120);
    const { rows: hypertables } = await pool.query<{ hypertable_name: string }>(
      `SELECT hypertable_name FROM timescaledb_information.hypertables WHERE hypertable_name = 'node_metrics'`,
    );
    expect(hypertables).toHaveLength(1);
    const { rows: views } = await pool.query<{ materialized_only: boolean }>(
      `SELECT materialized_only FROM timescaledb_information.continuous_aggregates WHERE view_name = 'node_metrics_hourly'`,
    );
    expect(views).toEqual([{ materialized_only: false }]);
    const { rows: jobs } = await pool.query<{ job_id: number; proc_name: string; hypertable_name: string }>(
      `SELECT j.job_id, j.proc_name, coalesce(ca.view_name, j.hypertable_name) AS hypertable_name
         FROM timescaledb_information.jobs j
         LEFT JOIN timescaledb_information.continuous_aggregates ca ON ca.materialization_hypertable_name = j.hypertable_name
        WHERE coalesce(ca.view_name, j.hypertable_name) IN ('node_metrics', 'node_metrics_hourly')`,
    );
    expect(jobs.map((j) => `${j.hypertable_name}:${j.proc_name}`)).toEqual(
      expect.arrayContaining([
        'node_metrics:policy_retention',
        'node_metrics_hourly:policy_refresh_continuous_aggregate',
        'node_metrics_hourly:policy_retention',
      ]),
    );
    for (const job of jobs) await pool.query(`CALL run_job($1)`, [job.job_id]);

    const { rows: license } = await pool.query<{ license: string }>(
      `SELECT current_setting('timescaledb.license') AS license`,
    );
    if (license[0]!.license !== 'apache') {
      expect(jobs.map((j) => j.proc_name)).toContain('policy_compression');
      const { rows: compressed } = await pool.query(
        `SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks('node_metrics', older_than => $1::timestamptz) c`,
        [new Date(now - 2 * DAY)],
      );
      expect(compressed.length).toBeGreaterThan(0);
    }
    // Into the compressed chunk: minutes written late (from the buffer) and one already there.
    nodes.enqueue([minute(0), ...Array.from({ length: 60 }, (_, m) => minute(120 + m))]);
    await nodes.flush();
    expect(nodes.stats()).toMatchObject({ minutesWritten: 180, minutesDuplicate: 1 });
    await nodes.maintain(new Date(now));
    const history = new NodeHistory({ metricsPool: pool, storageKind: () => store.storageKind() });
    for (const step of ['1m', '1h']) {
      const plan = planHistory(
        'node-ts',
        { from: String(first), to: String(first + 3 * HOUR), step },
        { retentionDays: 14, now },
      );
      const answer = (await history.query('node-ts', plan))!;
      const sum = (values: readonly (number | null)[]) => values.reduce<number>((a, b) => a + (b ?? 0), 0);
      expect([step, sum(answer.netRxBytes), sum(answer.diskWriteBytes)]).toEqual([step, 180 * 300, 180 * 200]);
      expect(new Set(answer.cpuAvg)).toEqual(new Set([25]));
    }
  });
});
