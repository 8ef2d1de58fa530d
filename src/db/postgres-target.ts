/**
 * Where PostgreSQL is: DATABASE_URL, METRICS_DATABASE_URL and DATABASE_LISTEN_URL, in libpq's URL
 * form with one host or several:
 *
 *   postgres://user:password@h1:5432,h2:5432/db?target_session_attrs=read-write
 *
 * node-postgres takes one host only, so the host list is parsed here and every connection is given
 * one host from it (primary-locator.ts picks which). The service writes to every database it
 * uses, so with several hosts it always looks for the primary; `target_session_attrs` may say
 * `read-write` or `primary` (or be left out), nothing else. With one host and
 * `target_session_attrs`, new connections are still checked, and a standby is refused.
 */
import { isIP } from 'node:net';

export interface PostgresHost {
  readonly host: string;
  readonly port: number;
}

export interface PostgresTarget {
  readonly hosts: readonly PostgresHost[];
  /** Connect only where the server is writable (not in recovery, not read-only). */
  readonly primaryOnly: boolean;
  /** The URL node-postgres parses for one of the hosts (the rest of the URL unchanged). */
  urlFor(host: PostgresHost): string;
}

export class PostgresTargetError extends Error {}

const MAX_HOSTS = 16;
const HOST = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const SESSION_ATTRS = new Set(['read-write', 'primary']);
// scheme, credentials (up to the last @ before the path), the host list, the rest (path and query).
const SHAPE = /^(postgres(?:ql)?:\/\/)((?:[^@/?#]*@)?)([^/?#]*)(.*)$/s;

export function parsePostgresTarget(value: string): PostgresTarget {
  const shape = SHAPE.exec(value);
  if (!shape) throw new PostgresTargetError('must be a postgres:// or postgresql:// URL');
  const [, scheme, credentials, hostList, rest] = shape as unknown as [string, string, string, string, string];
  // One host keeps whatever node-postgres takes (a percent-encoded socket directory included).
  const hosts = hostList.includes(',') ? hostList.split(',').map(parseHost) : [singleHost(value)];
  if (hosts.length > MAX_HOSTS) throw new PostgresTargetError(`give 1-${MAX_HOSTS} hosts`);
  const seen = new Set<string>();
  for (const host of hosts) {
    const key = `${host.host}:${host.port}`;
    if (seen.has(key)) throw new PostgresTargetError(`${key} is listed twice`);
    seen.add(key);
  }

  const queryAt = rest.indexOf('?');
  const path = queryAt === -1 ? rest : rest.slice(0, queryAt);
  const params = new URLSearchParams(queryAt === -1 ? '' : rest.slice(queryAt + 1));
  const attrs = params.getAll('target_session_attrs');
  if (attrs.length > 1 || (attrs.length === 1 && !SESSION_ATTRS.has(attrs[0]!)))
    throw new PostgresTargetError(
      'target_session_attrs must be read-write or primary: the service writes, so it needs the primary',
    );
  params.delete('target_session_attrs');
  const query = params.size > 0 ? `?${params.toString()}` : '';

  const urlFor = (host: PostgresHost) =>
    hosts.length === 1
      ? `${scheme}${credentials}${hostList}${path}${query}`
      : `${scheme}${credentials}${isIP(host.host) === 6 ? `[${host.host}]` : host.host}:${host.port}${path}${query}`;
  // Whatever the WHATWG parser refuses, node-postgres would refuse too: say so now, not at connect.
  try {
    new URL(urlFor(hosts[0]!));
  } catch {
    throw new PostgresTargetError('must be a postgres:// or postgresql:// URL (credentials percent-encoded)');
  }
  return { hosts, primaryOnly: hosts.length > 1 || attrs.length === 1, urlFor };
}

function singleHost(value: string): PostgresHost {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new PostgresTargetError('must be a postgres:// or postgresql:// URL (credentials percent-encoded)');
  }
  if (url.hostname === '') throw new PostgresTargetError('must be a postgres:// or postgresql:// URL with a host');
  return { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: url.port === '' ? 5432 : Number(url.port) };
}

export function describeHost(host: PostgresHost): string {
  return isIP(host.host) === 6 ? `[${host.host}]:${host.port}` : `${host.host}:${host.port}`;
}

function parseHost(entry: string): PostgresHost {
  const match = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]]+)(?::([0-9]{1,5}))?$/.exec(entry);
  const host = match?.[1]?.replace(/^\[(.*)\]$/, '$1') ?? '';
  const port = match?.[2] === undefined ? 5432 : Number(match[2]);
  let decoded = host;
  try {
    decoded = decodeURIComponent(host);
  } catch {
    decoded = '';
  }
  if (decoded === '' || !(HOST.test(decoded) || isIP(decoded) !== 0) || !(port >= 1 && port <= 65535))
    throw new PostgresTargetError(
      `each host must be host[:port] (${JSON.stringify(entry.slice(0, 80))}; a socket path is not supported with several hosts)`,
    );
  return { host: decoded, port };
}
