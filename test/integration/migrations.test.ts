import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Database, migrate, migrations } from '../../src/db/index.js';
import { HealthRegistry } from '../../src/health/index.js';
import { missingTools, startPostgres, waitFor, type TestPostgres } from '../harness/index.js';

const skip = missingTools(['postgres']);

describe.skipIf(skip)('migrations against a real PostgreSQL', () => {
  let postgres: TestPostgres;
  beforeAll(async () => {
    postgres = await startPostgres();
  });
  afterAll(async () => {
    await postgres?.destroy();
  });

  it('applies each migration exactly once when two instances migrate at the same time', async () => {
    const url = await postgres.createDatabase('concurrent');
    const pools = [new pg.Pool({ connectionString: url }), new pg.Pool({ connectionString: url })];
    try {
      const results = await Promise.all(pools.map((pool) => migrate(pool, migrations)));
      const appliedCounts = results.map((r) => r.applied.length).sort();
      expect(appliedCounts).toEqual([0, migrations.length]);
      expect(results.every((r) => r.current === migrations.length)).toBe(true);
      const recorded = await pools[0]!.query('SELECT version FROM swarm_edge_migrations ORDER BY version');
      expect(recorded.rows.map((r: { version: number }) => r.version)).toEqual(migrations.map((m) => m.version));
      // And a third run later finds nothing to do.
      expect((await migrate(pools[1]!, migrations)).applied).toEqual([]);
    } finally {
      await Promise.all(pools.map((pool) => pool.end()));
    }
  });

  it('creates the platform tables with the documented columns', async () => {
    const url = await postgres.createDatabase('columns');
    const pool = new pg.Pool({ connectionString: url });
    try {
      await migrate(pool, migrations);
      const columns = await pool.query<{ table_name: string; column_name: string }>(
        `SELECT table_name, column_name FROM information_schema.columns
          WHERE table_name IN ('deployment_routing', 'deployment_locations', 'node_metadata')`,
      );
      const byTable = (t: string) => columns.rows.filter((r) => r.table_name === t).map((r) => r.column_name);
      expect(byTable('deployment_routing')).toEqual(
        expect.arrayContaining([
          'id',
          'deployment_id',
          'domain',
          'service_name',
          'path_prefix',
          'target_port',
          'protocol',
          'ssl_enabled',
          'ssl_cert_resolver',
          'load_balancer_algo',
          'middleware',
          'created_at',
          'updated_at',
          'weight',
          'entry_point',
          'tls_passthrough',
          'mirror_percent',
        ]),
      );
      expect(byTable('deployment_locations')).toEqual(
        expect.arrayContaining([
          'deployment_id',
          'node_id',
          'node_hostname',
          'node_ip',
          'container_id',
          'service_id',
          'task_id',
          'status',
          'port',
          'domain',
          'health_status',
          'last_health_check',
          'cpu_usage',
          'memory_usage',
          'created_at',
          'updated_at',
        ]),
      );
      expect(byTable('node_metadata')).toEqual(
        expect.arrayContaining([
          'id',
          'hostname',
          'ip',
          'role',
          'availability',
          'status',
          'total_cpu',
          'total_memory',
          'deployment_count',
          'labels',
          'last_heartbeat',
        ]),
      );
    } finally {
      await pool.end();
    }
  });

  it('notifies on every change to deployment_routing', async () => {
    const url = await postgres.createDatabase('notify');
    const pool = new pg.Pool({ connectionString: url });
    const listener = new pg.Client({ connectionString: url });
    try {
      await migrate(pool, migrations);
      await listener.connect();
      const payloads: Array<{ op: string; id?: string }> = [];
      listener.on('notification', (n) => payloads.push(JSON.parse(n.payload ?? '{}') as { op: string; id?: string }));
      await listener.query('LISTEN deployment_routing_changed');
      await pool.query(
        `INSERT INTO deployment_routing (id, deployment_id, domain, target_port) VALUES ('r1', 'd1', 'a.example.com', 80)`,
      );
      await pool.query(`UPDATE deployment_routing SET domain = 'b.example.com' WHERE id = 'r1'`);
      await pool.query(`DELETE FROM deployment_routing WHERE id = 'r1'`);
      await pool.query(`TRUNCATE deployment_routing`);
      await waitFor('four notifications', () => payloads.length === 4, 5_000);
      expect(payloads).toEqual([
        { op: 'INSERT', id: 'r1' },
        { op: 'UPDATE', id: 'r1' },
        { op: 'DELETE', id: 'r1' },
        { op: 'TRUNCATE' },
      ]);
    } finally {
      await listener.end();
      await pool.end();
    }
  });

  it('keeps retrying until PostgreSQL is reachable, then migrates and reports it up', async () => {
    const url = await postgres.createDatabase('late');
    const health = new HealthRegistry();
    await postgres.stop();
    const database = new Database({ url, probeIntervalMs: 200 }, { log: pino({ level: 'silent' }), health });
    try {
      database.start();
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(health.report().dependencies.postgres).toMatchObject({ status: 'down', critical: true });
      expect(database.isReady()).toBe(false);
      await postgres.start();
      await database.whenMigrated();
      await waitFor('postgres up', () => database.isReady(), 10_000);
      expect(health.report().status).toBe('ok');
    } finally {
      await database.close();
    }
  });
});
