/**
 * Which database errors mean "the connection is gone" (reconnect, maybe elsewhere) and which mean
 * "this query is wrong" (a schema change, a bad value): the first take PostgreSQL's health down and
 * wait for it to come back; the second leave PostgreSQL up, fail only the query's own component,
 * and are retried with backoff, never in a loop driven by the health probe.
 */
import pg from 'pg';

/** SQLSTATE classes and codes of connection loss and failover (PostgreSQL appendix A). */
const CONNECTION_STATES = new Set([
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, recovering)
  '53300', // too_many_connections
  '25006', // read_only_sql_transaction: a demoted primary after a failover
]);

export function isConnectionError(error: unknown): boolean {
  // Only errors that PostgreSQL itself sent carry a SQLSTATE; everything else (ECONNREFUSED,
  // "Connection terminated unexpectedly", pool and connect timeouts) is about the connection.
  if (!(error instanceof pg.DatabaseError) || typeof error.code !== 'string') return true;
  return error.code.startsWith('08') || CONNECTION_STATES.has(error.code);
}
