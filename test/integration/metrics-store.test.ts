/**
 * Aggregate storage on a real PostgreSQL (no TimescaleDB here: the plain path): partitions,
 * idempotent batched writes, and an outage spanning several windows that loses nothing.
 */
import type pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../src/db/index.js';
import { AggregateStore } from '../../src/metrics/index.js';
import { windows } from '../fixtures/minute-windows.js';
import { missingTools, startPostgres, waitFor, type TestPostgres } from '../harness/index.js';

const skip = missingTools(['root', 'postgres']);
const log = pino({ level: 'silent' });
const HOUR = 3_600_000;

describe.skipIf(skip)('aggregate storage on PostgreSQL', () => {
  let postgres: TestPostgres;
  let pool: pg.Pool;
  beforeAll(async () => {
    postgres = await startPostgres();
    pool = createPool({ connectionString: postgres.url, applicationName: 'test', statementTimeoutMs: 3_000 }, log);
  });
  afterAll(async () => {
    await pool?.end().catch(() => undefined);
    await postgres?.destroy();
  });

  const newStore = (bufferMaxRows = 10_000) =>
    new AggregateStore(
      { bufferMaxRows, batchRows: 5_000, retentionDays: 14, rollupRetentionDays: 365, statementTimeoutMs: 3_000 },
      { pool, log },
    );

  it('keeps every finished window through an outage of several windows, each written exactly once', async () => {
    const start = Math.floor(Date.now() / HOUR) * HOUR - 2 * HOUR;
    const { rows, totals } = windows(start, 10);
    expect(rows).toHaveLength(20);
    const store = newStore();
    const states: string[] = [];
    store.onBreakerChange((state) => states.push(state));
    store.enqueue(rows.slice(0, 4));
    await store.flush();
    expect(store.stats()).toMatchObject({ kind: 'postgres', rowsWritten: 4, bufferedRows: 0 });

    await postgres.stop();
    store.enqueue(rows.slice(4, 12));
    await store.flush();
    expect(store.stats().bufferedRows).toBe(8);
    expect(store.breakerState()).toBe('open');
    store.enqueue(rows.slice(12));
    await store.flush(); // open: not even tried
    expect(store.stats()).toMatchObject({ bufferedRows: 16, droppedRows: 0 });

    await postgres.start();
    await waitFor(
      'the buffer to drain after PostgreSQL is back',
      async () => {
        await store.flush();
        return store.stats().bufferedRows === 0;
      },
      60_000,
      500,
    );
    expect(states).toContain('open');
    expect(states.at(-1)).toBe('closed');

    // A retry of an already-written batch changes nothing.
    store.enqueue(rows.slice(0, 4));
    await store.flush();
    expect(store.stats().rowsDuplicate).toBe(4);

    const stored = await pool.query<{ container_id: string; n: string; distinct_buckets: string; rx: string }>(
      'SELECT container_id, count(*) AS n, count(DISTINCT bucket) AS distinct_buckets, sum(net_rx_bytes) AS rx FROM container_metrics GROUP BY container_id ORDER BY 1',
    );
    expect(stored.rows.map((r) => [Number(r.n), Number(r.distinct_buckets)])).toEqual([
      [10, 10],
      [10, 10],
    ]);
    for (const row of stored.rows) expect(Number(row.rx)).toBe(totals.get(row.container_id));

    await store.maintain(new Date(start + 10 * 60_000));
    const rollup = await pool.query<{ deployment_id: string; net_rx_bytes: string; container_minutes: string }>(
      'SELECT deployment_id, net_rx_bytes, container_minutes FROM deployment_metrics_hourly ORDER BY 1',
    );
    expect(rollup.rows.map((r) => [r.deployment_id, Number(r.container_minutes)])).toEqual([
      ['dep-a', 10],
      ['dep-b', 10],
    ]);
    const partitions = await pool.query<{ name: string }>(
      "SELECT relname AS name FROM pg_class WHERE relname LIKE 'container_metrics_p%' AND relkind = 'r'",
    );
    expect(partitions.rows.length).toBeGreaterThanOrEqual(3);
  });

  it('drops the oldest rows beyond the buffer bound, and counts them', async () => {
    const { rows } = windows(Date.UTC(2026, 0, 1), 5);
    const store = newStore(6);
    await postgres.stop();
    store.enqueue(rows);
    expect(store.stats()).toMatchObject({ bufferedRows: 6, droppedRows: 4 });
    await postgres.start();
  });
});
