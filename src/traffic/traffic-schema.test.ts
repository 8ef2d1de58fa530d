import { describe, expect, it } from 'vitest';
import { INSERT_REQUEST_METRICS, trafficSchemaStatements } from './traffic-schema.js';

describe('request metrics schema', () => {
  const retention = { retentionDays: 14, rollupRetentionDays: 365 };
  it('makes hypertables, real-time hourly rollups, their policies and compression with TimescaleDB', () => {
    const sql = trafficSchemaStatements('timescaledb', retention, { compression: true }).join('\n');
    for (const table of ['request_metrics', 'request_latency']) {
      expect(sql).toContain(`create_hypertable('${table}', by_range('bucket', INTERVAL '1 day')`);
      expect(sql).toContain(`add_retention_policy('${table}', INTERVAL '14 days'`);
      expect(sql).toContain(`add_compression_policy('${table}'`);
    }
    for (const view of ['deployment_requests_hourly', 'deployment_latency_hourly']) {
      expect(sql).toContain(`CREATE MATERIALIZED VIEW IF NOT EXISTS ${view} WITH (timescaledb.continuous)`);
      expect(sql).toContain(`ALTER MATERIALIZED VIEW ${view} SET (timescaledb.materialized_only = false)`);
      expect(sql).toContain(`add_continuous_aggregate_policy('${view}'`);
      expect(sql).toContain(`add_retention_policy('${view}', INTERVAL '365 days'`);
    }
    expect(trafficSchemaStatements('timescaledb', retention).join('\n')).not.toContain('compress');
  });
  it('partitions by range on plain PostgreSQL, with rollup tables the service fills', () => {
    const sql = trafficSchemaStatements('postgres', retention).join('\n');
    expect(sql).toContain('PARTITION BY RANGE (bucket)');
    expect(sql).not.toContain('timescaledb');
    expect(sql).toContain('CREATE TABLE IF NOT EXISTS deployment_requests_hourly');
  });
  it('adds to a minute row already there instead of replacing it', () => {
    expect(INSERT_REQUEST_METRICS).toContain('requests = request_metrics.requests + EXCLUDED.requests');
    expect(INSERT_REQUEST_METRICS.match(/\$\d+/g)?.length).toBe(15);
  });
});
