import { describe, expect, it } from 'vitest';
import {
  createPartitionStatement,
  expiredPartitions,
  INSERT_AGGREGATES,
  partitionName,
  ROLLUP_HOURS,
  schemaStatements,
} from './storage-schema.js';

const retention = { retentionDays: 14, rollupRetentionDays: 365 };

describe('storage statements', () => {
  it('builds a hypertable, an hourly continuous aggregate and its policies with TimescaleDB', () => {
    const statements = schemaStatements('timescaledb', retention, { compression: true }).join(';\n');
    expect(statements).toContain(
      "create_hypertable('container_metrics', by_range('bucket', INTERVAL '1 day'), if_not_exists => TRUE)",
    );
    expect(statements).toContain(
      'CREATE MATERIALIZED VIEW IF NOT EXISTS deployment_metrics_hourly WITH (timescaledb.continuous)',
    );
    expect(statements).toContain("time_bucket(INTERVAL '1 hour', bucket)");
    expect(statements).toContain("add_continuous_aggregate_policy('deployment_metrics_hourly'");
    expect(statements).toContain("add_retention_policy('container_metrics', INTERVAL '14 days'");
    expect(statements).toContain("add_retention_policy('deployment_metrics_hourly', INTERVAL '365 days'");
    expect(statements).toContain("add_compression_policy('container_metrics'");
    expect(statements).not.toContain('PARTITION BY');
  });

  it('leaves compression out of the Apache-licensed build', () => {
    expect(schemaStatements('timescaledb', retention, { compression: false }).join('\n')).not.toContain('compress');
  });

  it('uses native daily partitions, a BRIN index and a rollup table without TimescaleDB', () => {
    const statements = schemaStatements('postgres', retention).join(';\n');
    expect(statements).toContain('PARTITION BY RANGE (bucket)');
    expect(statements).toContain('USING brin (bucket)');
    expect(statements).toContain('CREATE TABLE IF NOT EXISTS deployment_metrics_hourly');
    expect(statements).not.toMatch(/timescaledb|time_bucket|hypertable/);
    expect(ROLLUP_HOURS).toContain('ON CONFLICT (deployment_id, bucket) DO UPDATE');
  });

  it('inserts with one unnest and is idempotent per container and minute', () => {
    expect(INSERT_AGGREGATES).toMatch(/SELECT \* FROM unnest\(\$1::timestamptz\[\]/);
    expect(INSERT_AGGREGATES.match(/\$\d+/g)).toHaveLength(18);
    expect(INSERT_AGGREGATES).toContain('ON CONFLICT (container_id, bucket) DO NOTHING');
  });

  it('names, creates and expires daily partitions in UTC', () => {
    const day = new Date('2026-11-22T17:30:00Z');
    expect(partitionName(day)).toBe('container_metrics_p20261122');
    expect(createPartitionStatement(day)).toBe(
      "CREATE TABLE IF NOT EXISTS container_metrics_p20261122 PARTITION OF container_metrics FOR VALUES FROM ('2026-11-22T00:00:00.000Z') TO ('2026-11-23T00:00:00.000Z')",
    );
    const names = [
      'container_metrics_p20261101',
      'container_metrics_p20261107',
      'container_metrics_p20261108',
      'container_metrics_p20261122',
      'other',
    ];
    expect(expiredPartitions(names, day, 14)).toEqual(['container_metrics_p20261101', 'container_metrics_p20261107']);
  });
});
