/**
 * Flush of 5,000 aggregate rows to a real PostgreSQL (the harness's): one batched
 * INSERT … SELECT FROM unnest(...) against the naive way, one INSERT per row in a transaction.
 *
 *   npx tsx bench/flush.ts        # BENCH_ROWS=5000
 */
import pino from 'pino';
import { createPool } from '../src/db/index.js';
import { AggregateStore, type AggregateRow } from '../src/metrics/index.js';
import { rowValues, toColumns } from '../src/metrics/aggregate-store.js';
import { INSERT_AGGREGATE_ROW, INSERT_AGGREGATES } from '../src/metrics/storage-schema.js';
import { startPostgres } from '../test/harness/index.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 5000);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function rows(offsetMinutes: number): AggregateRow[] {
  const bucket = Math.floor(Date.now() / 60_000) * 60_000 - offsetMinutes * 60_000;
  return Array.from({ length: ROWS }, (_, i) => ({
    bucket,
    containerId: i.toString(16).padStart(64, '0'),
    deploymentId: `dep-${i % 200}`,
    nodeId: `node-${i % 5}`,
    serviceId: `svc-${i % 200}`,
    cpuAvg: 12.5,
    cpuMax: 50,
    memoryAvg: 123_456_789,
    memoryMax: 223_456_789,
    netRxBytes: 1_000_000 + i,
    netTxBytes: 500_000,
    blockReadBytes: 0,
    blockWriteBytes: 4096,
    samples: 12,
    cpuThrottledPeriods: 0,
    cpuThrottledSeconds: 0,
    oomKills: 0,
    exits: 0,
  }));
}

const postgres = await startPostgres();
const log = pino({ level: 'silent' });
const pool = createPool({ connectionString: postgres.url, applicationName: 'bench', statementTimeoutMs: 60_000 }, log);
try {
  // Schema and today's partitions, as the service creates them.
  const store = new AggregateStore(
    {
      bufferMaxRows: ROWS * 2,
      batchRows: ROWS,
      retentionDays: 14,
      rollupRetentionDays: 365,
      statementTimeoutMs: 60_000,
    },
    { pool, log },
  );
  store.enqueue(rows(10_000).slice(0, 1));
  await store.flush();
  await store.maintain();

  const batched: number[] = [];
  const naive: number[] = [];
  for (let run = 0; run < 5; run++) {
    const a = rows(2 * run + 1);
    let start = performance.now();
    await pool.query(INSERT_AGGREGATES, toColumns(a));
    batched.push(performance.now() - start);

    const b = rows(2 * run + 2);
    const client = await pool.connect();
    start = performance.now();
    await client.query('BEGIN');
    for (const row of b) {
      await client.query(INSERT_AGGREGATE_ROW, rowValues(row));
    }
    await client.query('COMMIT');
    naive.push(performance.now() - start);
    client.release();
  }
  const count = await pool.query<{ n: string }>('SELECT count(*) AS n FROM container_metrics');
  console.log(
    `flush of ${ROWS.toLocaleString('en')} aggregate rows: one unnest INSERT median ${median(batched).toFixed(0)} ms; ` +
      `row-by-row INSERTs in one transaction median ${median(naive).toFixed(0)} ms → unnest is ${(median(naive) / median(batched)).toFixed(1)}× faster ` +
      `(${count.rows[0]!.n} rows stored)`,
  );
} finally {
  await pool.end();
  await postgres.destroy();
}
