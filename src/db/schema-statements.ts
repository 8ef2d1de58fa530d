/**
 * Idempotent schema statements of a store, run by one instance at a time (several nodes start
 * together) under an advisory lock, in one transaction. An index or a continuous aggregate created by an upgrade is
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
    // One transaction with a transaction-scoped lock and setting: safe through a pooler in
    // transaction mode, where a session lock could stay behind on a pooled server connection.
    await client.query('BEGIN');
    await client.query('SET LOCAL statement_timeout = 0');
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [lockName]);
    for (const statement of statements)
      // query_timeout per query is read by pg's client (lib/client.js) but missing from its types.
      await client.query({ text: statement, query_timeout: SCHEMA_TIMEOUT_MS } as pg.QueryConfig);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    // Out of the pool: the connection may be broken, or on a primary demoted by a failover.
    client.release(error as Error);
    throw error;
  }
  client.release();
}

/** A long maintenance statement (a continuous aggregate's refresh) with the schema's client timeout. */
export function longQuery(text: string, values: unknown[]): pg.QueryConfig {
  return { text, values, query_timeout: SCHEMA_TIMEOUT_MS } as pg.QueryConfig;
}
