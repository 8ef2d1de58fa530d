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
 * Applies the pending migrations, each in its own transaction, under a session advisory lock so
 * that instances starting together apply each migration exactly once: the others wait on the
 * lock, then find nothing left to do.
 */
export async function migrate(pool: pg.Pool, list: readonly Migration[]): Promise<MigrationResult> {
  const client = await pool.connect();
  let broken = false;
  try {
    // Waiting for another instance's migrations must not hit the pool's statement timeout.
    await client.query('SET statement_timeout = 0');
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY.toString()]);
    try {
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
        await client.query('BEGIN');
        try {
          await client.query(migration.sql);
          await client.query('INSERT INTO swarm_edge_migrations (version, name) VALUES ($1, $2)', [
            migration.version,
            migration.name,
          ]);
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw new Error(`migration ${migration.version} (${migration.name}) failed: ${errorMessage(error)}`, {
            cause: error,
          });
        }
        applied.push(migration.version);
      }
      const current = Math.max(0, ...doneVersions, ...applied);
      return { applied, current };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY.toString()]).catch(() => {
        broken = true;
      });
      await client.query('RESET statement_timeout').catch(() => {
        broken = true;
      });
    }
  } catch (error) {
    broken = true;
    throw error;
  } finally {
    // A client whose session state is unknown (lock held, timeout off) must not go back to the pool.
    client.release(broken);
  }
}
