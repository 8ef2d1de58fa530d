/**
 * Idempotent schema statements of a store, run by one instance at a time (several nodes start
 * together) under an advisory lock. An index or a continuous aggregate created by an upgrade is
 * built over the whole table: no server-side statement timeout here, and an hour on the client's
 * side (pg's default query_timeout of the pool would cut it short).
 */
import type pg from 'pg';

/** How long one schema statement may take. */
export const SCHEMA_TIMEOUT_MS = 3_600_000;

export async function runSchemaStatements(
  pool: Pick<pg.Pool, 'connect'>,
  lockName: string,
  statements: readonly string[],
): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [lockName]);
    await client.query('SET statement_timeout = 0');
    for (const statement of statements)
      // query_timeout per query is read by pg's client (lib/client.js) but missing from its types.
      await client.query({ text: statement, query_timeout: SCHEMA_TIMEOUT_MS } as pg.QueryConfig);
  } catch (error) {
    // Out of the pool: the session ends, which also lets go of the advisory lock.
    client.release(error as Error);
    throw error;
  }
  await client.query('RESET statement_timeout').catch(() => undefined);
  await client.query('SELECT pg_advisory_unlock(hashtext($1))', [lockName]).catch(() => undefined);
  client.release();
}

/** A long maintenance statement (a continuous aggregate's refresh) with the schema's client timeout. */
export function longQuery(text: string, values: unknown[]): pg.QueryConfig {
  return { text, values, query_timeout: SCHEMA_TIMEOUT_MS } as pg.QueryConfig;
}
