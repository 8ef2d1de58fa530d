/**
 * Where Redis is: REDIS_URL in one of two forms.
 *
 *   redis://[[user]:password@]host:port[/db]      rediss:// for TLS: one server
 *   redis+sentinel://[[user]:password@]s1:26379,s2:26379/<master>[?db=N&sentinelPassword=…]
 *                                                 Sentinel: the sentinels and the master's name;
 *                                                 the credentials are the master's (and its
 *                                                 replicas'), sentinelPassword the sentinels'
 *   redis+cluster://[[user]:password@]n1:6379,n2:6379
 *                                                 Redis Cluster: some of its nodes (seeds; the
 *                                                 client learns the rest from them)
 *
 * With Sentinel, ioredis asks the sentinels for the current master, follows a failover (it
 * subscribes to +switch-master), and reconnects when the server it writes to turns out to be a
 * replica (a demoted master answers READONLY).
 */
import { isIP } from 'node:net';

export type RedisTarget =
  | { readonly kind: 'server'; readonly url: string }
  | {
      readonly kind: 'cluster';
      readonly nodes: ReadonlyArray<{ readonly host: string; readonly port: number }>;
      readonly username: string | undefined;
      readonly password: string | undefined;
    }
  | {
      readonly kind: 'sentinel';
      readonly sentinels: ReadonlyArray<{ readonly host: string; readonly port: number }>;
      readonly name: string;
      readonly username: string | undefined;
      readonly password: string | undefined;
      readonly sentinelPassword: string | undefined;
      readonly db: number;
    };

export class RedisTargetError extends Error {}

const HOST = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const MASTER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const MAX_SENTINELS = 16;
const CLUSTER = 'redis+cluster://';

export function parseRedisTarget(value: string): RedisTarget {
  if (value.startsWith(CLUSTER)) return parseCluster(value.slice(CLUSTER.length));
  if (!value.startsWith('redis+sentinel://')) {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new RedisTargetError('must be a redis://, rediss://, redis+sentinel:// or redis+cluster:// URL');
    }
    if ((url.protocol !== 'redis:' && url.protocol !== 'rediss:') || url.hostname === '')
      throw new RedisTargetError('must be a redis://, rediss:// or redis+sentinel:// URL with a host');
    return { kind: 'server', url: value };
  }
  const rest = value.slice('redis+sentinel://'.length);
  const at = rest.lastIndexOf('@', rest.indexOf('/') === -1 ? rest.length : rest.indexOf('/'));
  const credentials = at === -1 ? '' : rest.slice(0, at);
  const afterCredentials = at === -1 ? rest : rest.slice(at + 1);
  const slash = afterCredentials.indexOf('/');
  if (slash === -1) throw new RedisTargetError('redis+sentinel:// needs the master name as its path (…/mymaster)');
  const hosts = afterCredentials.slice(0, slash);
  const [path, query = ''] = afterCredentials.slice(slash + 1).split('?', 2) as [string, string?];
  const name = decodeURIComponent(path);
  if (!MASTER_NAME.test(name)) throw new RedisTargetError('the master name must be 1-64 letters, digits, _ . -');
  const sentinels = parseHosts(hosts, 'sentinel');
  const params = new URLSearchParams(query);
  for (const key of params.keys())
    if (key !== 'db' && key !== 'sentinelPassword')
      throw new RedisTargetError(`unknown parameter ${JSON.stringify(key.slice(0, 40))} (db, sentinelPassword)`);
  const rawDb = params.get('db') ?? '0';
  if (!/^[0-9]{1,2}$/.test(rawDb)) throw new RedisTargetError('db must be a database number');
  return {
    kind: 'sentinel',
    sentinels,
    name,
    ...parseCredentials(credentials),
    sentinelPassword: params.get('sentinelPassword') ?? undefined,
    db: Number(rawDb),
  };
}

/** A cluster has database 0 only: no path, no query. */
function parseCluster(rest: string): RedisTarget {
  const at = rest.lastIndexOf('@');
  const hosts = (at === -1 ? rest : rest.slice(at + 1)).replace(/\/$/, '');
  if (/[/?#]/.test(hosts))
    throw new RedisTargetError('redis+cluster:// takes nodes only (a cluster has no database number)');
  return { kind: 'cluster', nodes: parseHosts(hosts, 'node'), ...parseCredentials(at === -1 ? '' : rest.slice(0, at)) };
}

function parseHosts(list: string, what: string): Array<{ host: string; port: number }> {
  const hosts = list.split(',').map((entry) => {
    const match = /^(.+):([0-9]{1,5})$/.exec(entry.trim());
    const host = match?.[1]?.replace(/^\[(.*)\]$/, '$1');
    const port = Number(match?.[2]);
    if (!host || !(HOST.test(host) || isIP(host) !== 0) || !(port >= 1 && port <= 65535))
      throw new RedisTargetError(`each ${what} must be host:port`);
    return { host, port };
  });
  if (hosts.length === 0 || hosts.length > MAX_SENTINELS)
    throw new RedisTargetError(`give 1-${MAX_SENTINELS} ${what}s`);
  return hosts;
}

/** As in any URL: `user@`, `:password@` or `user:password@` (percent-encoded). */
function parseCredentials(credentials: string): { username: string | undefined; password: string | undefined } {
  const colon = credentials.indexOf(':');
  const decode = (part: string) => {
    if (part === '') return undefined;
    try {
      return decodeURIComponent(part);
    } catch {
      throw new RedisTargetError('credentials must be percent-encoded');
    }
  };
  return {
    username: decode(colon === -1 ? credentials : credentials.slice(0, colon)),
    password: colon === -1 ? undefined : decode(credentials.slice(colon + 1)),
  };
}

/** The target without any password, for logs and errors. */
export function describeRedisTarget(target: RedisTarget): string {
  if (target.kind === 'cluster') return `cluster via ${target.nodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
  if (target.kind === 'sentinel')
    return `sentinel ${target.name} via ${target.sentinels.map((s) => `${s.host}:${s.port}`).join(',')}`;
  try {
    const url = new URL(target.url);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return 'redis';
  }
}
