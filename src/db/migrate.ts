import type pg from 'pg';
import type { Migration } from './migrations.js';
import { errorMessage } from '../lib/errors.js';

/** Arbitrary but fixed: every instance of the service takes the same advisory lock. */
const MIGRATION_LOCK_KEY = 7_461_203_118_552_041n;

export interface MigrationResult {
  readonly applied: readonly number[];
  readonly current: number;
}

/**
 * Applies the pending migrations in one transaction under a transaction-scoped advisory lock, so
 * that instances starting together apply each migration exactly once (the others wait on the
 * lock, then find nothing left to do), and so that it works through a pooler in transaction mode:
 * nothing outlives the transaction, no lock or setting is left on a pooled server connection. A
 * failed migration leaves the schema as it was.
 */
export async function migrate(pool: pg.Pool, list: readonly Migration[]): Promise<MigrationResult> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    // Waiting for another instance's migrations must not hit the pool's statement timeout.
    await client.query('SET LOCAL statement_timeout = 0');
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY.toString()]);
    await client.query(`CREATE TABLE IF NOT EXISTS swarm_edge_migrations (
      version    integer PRIMARY KEY,
      name       text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const done = await client.query<{ version: number }>('SELECT version FROM swarm_edge_migrations');
    const doneVersions = new Set(done.rows.map((r) => r.version));
    const applied: number[] = [];
    for (const migration of [...list].sort((a, b) => a.version - b.version)) {
      if (doneVersions.has(migration.version)) continue;
      try {
        await client.query(migration.sql);
        await client.query('INSERT INTO swarm_edge_migrations (version, name) VALUES ($1, $2)', [
          migration.version,
          migration.name,
        ]);
      } catch (error) {
        throw new Error(`migration ${migration.version} (${migration.name}) failed: ${errorMessage(error)}`, {
          cause: error,
        });
      }
      applied.push(migration.version);
    }
    await client.query('COMMIT');
    client.release();
    return { applied, current: Math.max(0, ...doneVersions, ...applied) };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    // Out of the pool: the connection may be broken, or on a primary demoted by a failover.
    client.release(error as Error);
    throw error;
  }
}
