import pg from 'pg';
import type { Logger } from '../lib/logger.js';

export interface PoolOptions {
  readonly connectionString: string;
  readonly applicationName: string;
  readonly max?: number;
  /** Server-side cap on every statement, so a stuck query can never hold a connection for long. */
  readonly statementTimeoutMs?: number;
}

/**
 * A pg pool whose idle-client errors are logged instead of crashing the process (pg emits them
 * when the server goes away), and whose connections give up quickly when the server is down.
 */
export function createPool(options: PoolOptions, log: Logger, onError?: (error: Error) => void): pg.Pool {
  const statementTimeout = options.statementTimeoutMs ?? 10_000;
  const pool = new pg.Pool({
    connectionString: options.connectionString,
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
