import pg from 'pg';
import type { Logger } from '../lib/logger.js';
import { PostgresEndpoint } from './postgres-endpoint.js';

export interface PoolOptions {
  /** A URL (one host or several, see postgres-target.ts), or an endpoint built from one. */
  readonly connectionString: string | PostgresEndpoint;
  readonly applicationName: string;
  readonly max?: number;
  /** Server-side cap on every statement, so a stuck query can never hold a connection for long. */
  readonly statementTimeoutMs?: number;
}

/**
 * A pg pool whose idle-client errors are logged instead of crashing the process (pg emits them
 * when the server goes away), and whose connections give up quickly when the server is down. With
 * several hosts, every connection goes to the primary (primary-locator.ts). A query that fails
 * through pool.query takes its connection out of the pool, so connections to a demoted primary
 * leave the pool at their first failed write.
 */
export function createPool(options: PoolOptions, log: Logger, onError?: (error: Error) => void): pg.Pool {
  const endpoint =
    typeof options.connectionString === 'string'
      ? new PostgresEndpoint(options.connectionString, log)
      : options.connectionString;
  const statementTimeout = options.statementTimeoutMs ?? 10_000;
  const pool = new pg.Pool({
    ...endpoint.connection(),
    application_name: options.applicationName,
    max: options.max ?? 10,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    statement_timeout: statementTimeout,
    // The client-side timeout also covers a server that accepts the query and never answers.
    query_timeout: statementTimeout + 2_000,
    keepAlive: true,
  });
  pool.on('error', (error) => {
    log.warn({ err: error }, 'idle PostgreSQL connection failed');
    onError?.(error);
  });
  return pool;
}
