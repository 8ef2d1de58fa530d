import { describe, expect, it } from 'vitest';
import { planHistory } from './history-params.js';
import { HistoryService, TooManyContainersError } from './history-service.js';
import { historyQuery, historyStatement } from './history-sql.js';

const NOW = Date.UTC(2026, 10, 30, 12, 0, 0);

describe('history SQL', () => {
  it('re-cuts buckets with time_bucket on TimescaleDB and date_bin on PostgreSQL, from one origin', () => {
    for (const [kind, fn] of [
      ['timescaledb', 'time_bucket'],
      ['postgres', 'date_bin'],
    ] as const) {
      for (const per of ['deployment', 'container'] as const) {
        const sql = historyStatement(kind, per, 'minute');
        expect(sql).toContain(`${fn}(make_interval(secs => $5), bucket, TIMESTAMPTZ '2000-01-01 00:00:00+00')`);
        expect(sql).toContain('FROM container_metrics');
        expect(sql).toMatch(/WHERE deployment_id = \$1 AND bucket >= \$2 AND bucket < \$3/);
        expect(sql).toContain('LIMIT $4');
        // At the rows' own resolution, rows are grouped as they are.
        expect(historyStatement(kind, per, 'minute', false)).not.toMatch(/time_bucket|date_bin|\$5/);
      }
      expect(historyStatement(kind, 'deployment', 'hour')).toContain('FROM deployment_metrics_hourly');
    }
    const NOW_ = Date.UTC(2026, 10, 30, 12);
    const minutePlan = planHistory('dep-1', { step: '1m' }, { retentionDays: 30, now: NOW_ });
    expect(historyQuery('postgres', minutePlan, 60).values).toEqual([
      'dep-1',
      new Date(NOW_ - 3_600_000),
      new Date(NOW_),
      60,
    ]);
    const fivePlan = planHistory('dep-1', { step: '5m' }, { retentionDays: 30, now: NOW_ });
    expect(historyQuery('timescaledb', fivePlan, 12).values.at(-1)).toBe(300);
    // Nothing from the request is ever spliced into the text.
    expect(historyStatement('postgres', 'deployment', 'minute')).not.toMatch(/dep-|\d{13}/);
  });
});

function fakePool(rows: unknown[]) {
  const calls: Array<{ sql: string; values: unknown[] }> = [];
  return {
    calls,
    pool: {
      query: (sql: string, values: unknown[]) => {
        calls.push({ sql, values });
        return Promise.resolve({ rows });
      },
    } as never,
  };
}

const locations = { pool: { query: () => Promise.reject(new Error('unused')) } as never, isReady: () => true };

describe('history answers', () => {
  it('puts every series on one time axis, null where no rows, and averages totals over covered minutes', async () => {
    const plan = planHistory(
      'dep-1',
      { from: String(NOW - 10 * 60_000), to: String(NOW), step: '5m' },
      { retentionDays: 30, now: NOW },
    );
    // First bucket: 2 containers × 5 minutes at 10 % each; second: only 2 minutes stored so far.
    const { pool, calls } = fakePool([
      {
        t: NOW - 600_000,
        last_ms: NOW - 360_000,
        cpu_sum: 100,
        cpu_max: 15,
        memory_sum: 10 * 1000,
        memory_max: 1200,
        net_rx: 50,
        net_tx: 5,
        block_read: 0,
        block_write: 1,
        container_minutes: 10,
      },
      {
        t: NOW - 300_000,
        last_ms: NOW - 240_000,
        cpu_sum: 40,
        cpu_max: 12,
        memory_sum: 4 * 1000,
        memory_max: 1100,
        net_rx: 20,
        net_tx: 2,
        block_read: 0,
        block_write: 0,
        container_minutes: 4,
      },
    ]);
    const service = new HistoryService({ metricsPool: pool, storageKind: () => 'postgres', locations });
    const answer = await service.query(plan, NOW);
    expect(calls[0]!.values).toEqual(['dep-1', new Date(NOW - 600_000), new Date(NOW), 2, 300]);
    expect(answer.t).toEqual([NOW - 600_000, NOW - 300_000]);
    expect(answer.deployment!.cpuAvg).toEqual([20, 20]);
    expect(answer.deployment!.memoryAvg).toEqual([2000, 2000]);
    expect(answer.deployment!.containers).toEqual([2, 2]);
    expect(answer.deployment!.netRxBytes).toEqual([50, 20]);
  });

  it('refuses more containers than a chart can hold', async () => {
    const plan = planHistory('dep-1', { per: 'container' }, { retentionDays: 30, now: NOW });
    const rows = Array.from({ length: 101 }, (_, i) => ({
      container_id: `c${i}`,
      node_id: 'n',
      t: plan.from,
      last_ms: plan.from,
      cpu_avg: 1,
      cpu_max: 1,
      memory_avg: 1,
      memory_max: 1,
      net_rx: 0,
      net_tx: 0,
      block_read: 0,
      block_write: 0,
      container_minutes: 1,
    }));
    const service = new HistoryService({
      metricsPool: fakePool(rows).pool,
      storageKind: () => 'timescaledb',
      locations,
    });
    await expect(service.query(plan, NOW)).rejects.toBeInstanceOf(TooManyContainersError);
  });
});
