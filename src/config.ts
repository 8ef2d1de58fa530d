/**
 * The service's whole configuration: read from environment variables once, validated against one
 * schema, reported all at once when wrong, then frozen and passed down. Nothing else reads
 * process.env.
 */
import { parsePostgresTarget, PostgresTargetError } from './db/postgres-target.js';
import { parseRedisTarget, RedisTargetError } from './redis/redis-target.js';
import { forwardAuthPrefixes } from './router/middleware-validation.js';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { z } from 'zod';

export const ROLES = ['router', 'metrics'] as const;
export type Role = (typeof ROLES)[number];

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const HOSTNAME =
  /^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;
/** Docker label keys: lowercase reverse-DNS style, as Docker recommends. */
const LABEL_PREFIX = /^[a-z0-9]+([.-][a-z0-9]+)*$/;

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

const httpUrl = z.string().refine((value) => {
  try {
    const url = new URL(value);
    return (
      (url.protocol === 'http:' || url.protocol === 'https:') &&
      url.hostname !== '' &&
      url.pathname === '/' &&
      !url.search
    );
  } catch {
    return false;
  }
}, 'must be an http(s)://host[:port] URL with no path');

const port = (what: string) =>
  z
    .string()
    .regex(/^\d{1,5}$/, `must be a whole number from 0 to 65535 (${what})`)
    .transform(Number)
    .refine((n) => n <= 65535, `must be a whole number from 0 to 65535 (${what})`);

const positiveInt = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `must be a whole number from ${min} to ${max}`)
    .transform(Number)
    .refine((n) => n >= min && n <= max, `must be a whole number from ${min} to ${max}`);

const postgresUrl = z.string().superRefine((value, ctx) => {
  try {
    parsePostgresTarget(value);
  } catch (error) {
    if (!(error instanceof PostgresTargetError)) throw error;
    ctx.addIssue({ code: 'custom', message: error.message });
  }
});

const redisUrl = z.string().superRefine((value, ctx) => {
  try {
    parseRedisTarget(value);
  } catch (error) {
    if (!(error instanceof RedisTargetError)) throw error;
    ctx.addIssue({ code: 'custom', message: error.message });
  }
});

const dockerHost = z.string().refine((value) => {
  if (value.startsWith('unix://')) return value.length > 'unix://'.length && value.slice(7).startsWith('/');
  try {
    const url = new URL(value);
    return ['tcp:', 'http:', 'https:'].includes(url.protocol) && url.hostname !== '' && url.port !== '';
  } catch {
    return false;
  }
}, 'must be unix:///absolute/path.sock or tcp://host:port');

/** The non-empty entries of a comma-separated setting, trimmed. */
function commaList(value: string): string[] {
  return value
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
}

const roles = z.string().transform((value, ctx) => {
  const parts = commaList(value);
  const unknown = parts.filter((p) => !(ROLES as readonly string[]).includes(p));
  if (parts.length === 0 || unknown.length > 0) {
    ctx.addIssue({ code: 'custom', message: `must be a comma-separated list of ${ROLES.join(', ')}` });
    return z.NEVER;
  }
  return [...new Set(parts as Role[])].sort();
});

/** Host names and `*.suffix` entries, comma-separated, lowercased, without trailing dots. */
const hostList = z.string().transform((value, ctx) => {
  const entries = commaList(value)
    .map((p) => p.toLowerCase().replace(/\.$/, ''))
    .filter((p) => p !== '');
  const bad = entries.filter((entry) => !HOSTNAME.test(entry.startsWith('*.') ? entry.slice(2) : entry));
  if (bad.length > 0) {
    ctx.addIssue({
      code: 'custom',
      message: `must be host names or *.suffix entries, comma-separated (not ${bad.map((b) => JSON.stringify(b)).join(', ')})`,
    });
    return z.NEVER;
  }
  return entries;
});

/** URL prefixes forwardAuth may call, comma-separated, in canonical form (middleware-validation.ts). */
const forwardAuthList = z.string().transform((value, ctx) => {
  try {
    return forwardAuthPrefixes(commaList(value));
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message.replace(/^TRAEFIK_FORWARD_AUTH_ALLOWED: /, '') });
    return z.NEVER;
  }
});

/** Traefik entry point names, comma-separated, each once. */
const entryPointList = z.string().transform((value, ctx) => {
  const names = commaList(value);
  const bad = names.filter((name) => !NAME.test(name));
  if (bad.length > 0) {
    ctx.addIssue({
      code: 'custom',
      message: `must be Traefik entry point names, comma-separated (not ${bad.map((b) => JSON.stringify(b.slice(0, 80))).join(', ')})`,
    });
    return z.NEVER;
  }
  return [...new Set(names)];
});

const bool = z.enum(['true', 'false']).transform((value) => value === 'true');

const MAX_TRAEFIK_TARGETS = 16;
/**
 * Traefik Prometheus endpoints: http(s) URLs with a path, no credentials, no fragment, each once.
 * `dns+http://tasks.traefik:8082/metrics` stands for every address the name resolves to.
 */
const scrapeUrls = z.string().transform((value, ctx) => {
  const entries = commaList(value);
  const urls: string[] = [];
  for (const entry of entries) {
    const dns = entry.startsWith('dns+');
    let url: URL;
    try {
      url = new URL(dns ? entry.slice(4) : entry);
    } catch {
      ctx.addIssue({ code: 'custom', message: `${JSON.stringify(entry)} is not a URL` });
      return z.NEVER;
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
      ctx.addIssue({ code: 'custom', message: `${JSON.stringify(entry)} must be an http(s) URL with a host` });
      return z.NEVER;
    }
    if (url.username !== '' || url.password !== '' || url.hash !== '') {
      ctx.addIssue({
        code: 'custom',
        message: `${JSON.stringify(redactUrl(entry))} must hold no credentials or fragment`,
      });
      return z.NEVER;
    }
    urls.push(`${dns ? 'dns+' : ''}${url.toString()}`);
  }
  if (urls.length === 0 || urls.length > MAX_TRAEFIK_TARGETS || new Set(urls).size !== urls.length) {
    ctx.addIssue({
      code: 'custom',
      message: `must be 1 to ${MAX_TRAEFIK_TARGETS} distinct http(s) URLs, comma-separated (e.g. http://traefik:8080/metrics)`,
    });
    return z.NEVER;
  }
  return urls;
});

/** Every variable the service reads. Empty strings count as unset (as `FOO=` does in compose files). */
const envSchema = z.object({
  HOST: z
    .string()
    .refine((h) => isIP(h) !== 0 || HOSTNAME.test(h), 'must be an IP address or a host name')
    .default('0.0.0.0'),
  PORT: port('the HTTP port').default(8080),
  DATABASE_URL: postgresUrl.optional(),
  METRICS_DATABASE_URL: postgresUrl.optional(),
  DATABASE_LISTEN_URL: postgresUrl.optional(),
  REDIS_URL: redisUrl.optional(),
  DOCKER_HOST: dockerHost.default('unix:///var/run/docker.sock'),
  EDGE_ROLES: roles.default(['metrics', 'router']),
  LABEL_PREFIX: z
    .string()
    .regex(LABEL_PREFIX, 'must look like a Docker label prefix, e.g. cloud.obiente')
    .default('cloud.obiente'),
  TRAEFIK_DYNAMIC_DIR: z.string().min(1).default('.data/traefik'),
  DATA_DIR: z.string().min(1).default('.data'),
  EMBEDDED_POSTGRES_PORT: port('the embedded PostgreSQL port').default(54329),
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  SHUTDOWN_TIMEOUT_SECONDS: positiveInt(1, 600).default(20),
  DISCOVERY_RESYNC_SECONDS: positiveInt(5, 3600).default(60),
  TRAEFIK_ENTRYPOINT_HTTP: z.string().regex(NAME, 'must be a Traefik entry point name').default('web'),
  TRAEFIK_ENTRYPOINT_HTTPS: z.string().regex(NAME, 'must be a Traefik entry point name').default('websecure'),
  TRAEFIK_CERT_RESOLVER: z.string().regex(NAME, 'must be a Traefik certificate resolver name').default('letsencrypt'),
  TRAEFIK_NETWORK: z.string().regex(NAME, 'must be a Docker network name').optional(),
  TRAEFIK_FALLBACK_URL: httpUrl.optional(),
  TRAEFIK_HTTP_TOKEN: z
    .string()
    .regex(/^[\x21-\x7e]{16,256}$/, 'must be 16-256 printable characters without spaces')
    .optional(),
  TRAEFIK_REDIS_ROOT: z
    .string()
    .regex(/^[a-zA-Z0-9_-]{1,64}$/, 'must be a key prefix of letters, digits, _ -')
    .optional(),
  ROUTING_RESERVED_HOSTS: hostList.default([]),
  ROUTING_HOST_SHARING: z.enum(['deny', 'paths']).default('deny'),
  TRAEFIK_FORWARD_AUTH_ALLOWED: forwardAuthList.default([]),
  TRAEFIK_TCP_ENTRYPOINTS: entryPointList.default([]),
  TRAEFIK_UDP_ENTRYPOINTS: entryPointList.default([]),
  METRICS_INTERVAL_SECONDS: positiveInt(1, 300).default(5),
  METRICS_LIVE_WINDOW_SECONDS: positiveInt(10, 86_400).default(300),
  METRICS_LIVE_MAX_BYTES: positiveInt(1_048_576, 4_294_967_296).default(64 * 1024 * 1024),
  METRICS_BUFFER_MAX_ROWS: positiveInt(100, 10_000_000).default(100_000),
  METRICS_RETENTION_DAYS: positiveInt(1, 3650).default(14),
  METRICS_ROLLUP_RETENTION_DAYS: positiveInt(1, 3650).default(365),
  STATS_SOURCE: z.enum(['auto', 'docker', 'cgroup']).default('auto'),
  STATS_DOCKER_CONCURRENCY: positiveInt(1, 256).default(16),
  CGROUP_ROOT: z.string().startsWith('/', 'must be an absolute path').default('/sys/fs/cgroup'),
  PROC_ROOT: z.string().startsWith('/', 'must be an absolute path').default('/proc'),
  TRAEFIK_METRICS_URLS: scrapeUrls.optional(),
  TRAEFIK_METRICS_TIMEOUT_SECONDS: positiveInt(1, 60).default(4),
  TRAEFIK_METRICS_MAX_BYTES: positiveInt(65_536, 1_073_741_824).default(256 * 1024 * 1024),
  NODE_DISK_PATHS: z
    .string()
    .transform((value, ctx) => {
      const paths = commaList(value);
      if (paths.length === 0 || paths.length > 16 || paths.some((p) => !p.startsWith('/') || p.includes('\0'))) {
        ctx.addIssue({ code: 'custom', message: 'must be 1 to 16 absolute paths, comma-separated' });
        return z.NEVER;
      }
      return [...new Set(paths)];
    })
    .default(['/']),
  FEED_AUTH: z.enum(['jwt', 'none']).default('jwt'),
  FEED_JWT_SECRET: z.string().min(32, 'must be at least 32 characters (HS256 key)').max(4096).optional(),
  FEED_JWKS_URL: z
    .string()
    .url()
    .refine((u) => u.startsWith('https://') || u.startsWith('http://'), 'must be an http(s) URL')
    .optional(),
  FEED_JWT_ISSUER: z.string().min(1).max(512).optional(),
  FEED_JWT_AUDIENCE: z.string().min(1).max(512).optional(),
  FEED_JWT_REQUIRE_EXP: bool.default(true),
  FEED_MAX_BUFFERED_BYTES: positiveInt(16 * 1024, 256 * 1024 * 1024).default(1024 * 1024),
  FEED_SLOW_GRACE_SECONDS: positiveInt(1, 600).default(10),
  FEED_MAX_SUBSCRIPTIONS: positiveInt(1, 10_000).default(50),
  FEED_HEARTBEAT_SECONDS: positiveInt(1, 3_600).default(30),
});

export interface Config {
  readonly host: string;
  readonly port: number;
  /** Undefined: start the embedded PostgreSQL (see db/embedded-postgres.ts). */
  readonly databaseUrl: string | undefined;
  /** Undefined: same database as databaseUrl. */
  readonly metricsDatabaseUrl: string | undefined;
  /** The routing table's LISTEN connection; undefined: databaseUrl (which may go through a pooler). */
  readonly databaseListenUrl: string | undefined;
  readonly redisUrl: string | undefined;
  readonly dockerHost: string;
  readonly roles: readonly Role[];
  readonly labelPrefix: string;
  readonly traefikDynamicDir: string;
  readonly dataDir: string;
  readonly embeddedPostgresPort: number;
  readonly logLevel: (typeof LOG_LEVELS)[number];
  readonly shutdownTimeoutMs: number;
  readonly discoveryResyncMs: number;
  readonly metrics: {
    readonly intervalMs: number;
    readonly liveWindowMs: number;
    readonly liveMaxBytes: number;
    readonly bufferMaxRows: number;
    readonly retentionDays: number;
    readonly rollupRetentionDays: number;
    readonly source: 'auto' | 'docker' | 'cgroup';
    readonly dockerConcurrency: number;
    readonly cgroupRoot: string;
    readonly procRoot: string;
  };
  readonly feed: {
    readonly auth: 'jwt' | 'none';
    readonly jwtSecret: string | undefined;
    readonly jwksUrl: string | undefined;
    readonly issuer: string | undefined;
    readonly audience: string | undefined;
    /** Refuse tokens without an `exp` claim. */
    readonly requireExpiry: boolean;
    readonly maxBufferedBytes: number;
    readonly slowGraceMs: number;
    readonly heartbeatMs: number;
    readonly maxSubscriptions: number;
  };
  readonly traefik: {
    readonly entryPoints: { readonly http: string; readonly https: string };
    readonly certResolver: string;
    readonly network: string | undefined;
    /** Where Traefik reaches this service; requests of deployments with no replica go there. */
    readonly fallbackUrl: string;
    readonly httpToken: string | undefined;
    /** Root key of the Redis provider's tree; undefined: do not publish to Redis. */
    readonly redisRoot: string | undefined;
  };
  readonly nodes: {
    /** Mount points whose space is reported (statfs); the first is the node's disk in node_metadata. */
    readonly diskPaths: readonly string[];
  };
  /** Traefik's Prometheus endpoints, scraped for request metrics per deployment (traffic/). */
  readonly traefikMetrics: {
    /** Empty: request metrics are off. */
    readonly urls: readonly string[];
    readonly timeoutMs: number;
    readonly maxBytes: number;
  };
  readonly routing: {
    /** Hosts no row may claim; `*.suffix`: that name and every name under it. localhost is always reserved. */
    readonly reservedHosts: readonly string[];
    /** deny: a host belongs to one deployment; paths: other deployments may route other paths under it. */
    readonly hostSharing: 'deny' | 'paths';
    /** URL prefixes a row's forwardAuth may call; empty: forwardAuth is refused. */
    readonly forwardAuthAllowed: readonly string[];
    /** Entry points TCP routes may name (each without TLS holds one alone); TCP with TLS also uses the HTTPS one. */
    readonly tcpEntryPoints: readonly string[];
    /** Entry points UDP routes may name, one route each. */
    readonly udpEntryPoints: readonly string[];
  };
}

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/** Hides the password of a URL-shaped value so an error message can show the rest of it. */
export function redactUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    // Not a URL the WHATWG parser takes (redis+sentinel:// with several hosts): mask by shape.
    return value.replace(/^([a-z+]+:\/\/[^:@/]*:)[^@/]*@/i, '$1***@');
  }
}

function shownValue(name: string, value: string | undefined): string {
  if (value === undefined) return '(unset)';
  if (name.endsWith('_TOKEN') || name.endsWith('_SECRET')) return '(hidden)';
  if (name.endsWith('_URLS') || name === 'TRAEFIK_FORWARD_AUTH_ALLOWED')
    return JSON.stringify(
      value
        .split(',')
        .map((entry) => redactUrl(entry.trim().replace(/^dns\+/, '')))
        .join(','),
    );
  return JSON.stringify(name.endsWith('_URL') ? redactUrl(value) : value);
}

/** Secrets may come from files (Docker secrets): NAME_FILE=/run/secrets/x instead of NAME=... */
export const FILE_VARIABLES = [
  'DATABASE_URL',
  'METRICS_DATABASE_URL',
  'DATABASE_LISTEN_URL',
  'REDIS_URL',
  'TRAEFIK_HTTP_TOKEN',
  'FEED_JWT_SECRET',
] as const;

export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const known = Object.keys(envSchema.shape);
  const input: Record<string, string> = {};
  const fileProblems: string[] = [];
  for (const name of known) {
    const value = env[name];
    if (value !== undefined && value.trim() !== '') input[name] = value.trim();
  }
  for (const name of FILE_VARIABLES) {
    const file = env[`${name}_FILE`]?.trim();
    if (!file) continue;
    if (input[name] !== undefined) {
      fileProblems.push(`${name}_FILE=${JSON.stringify(file)}: set either ${name} or ${name}_FILE, not both`);
      continue;
    }
    try {
      const content = readFileSync(path.resolve(cwd, file), 'utf8').trim();
      if (content !== '') input[name] = content;
    } catch (error) {
      fileProblems.push(
        `${name}_FILE=${JSON.stringify(file)}: cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  }
  if (fileProblems.length > 0) throw new ConfigError(fileProblems);
  const parsed = envSchema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0]);
      return `${name}=${shownValue(name, input[name])}: ${issue.message}`;
    });
    throw new ConfigError(problems);
  }
  const e = parsed.data;
  if (e.DATABASE_LISTEN_URL !== undefined && e.DATABASE_URL === undefined) {
    throw new ConfigError([
      `DATABASE_LISTEN_URL=${shownValue('DATABASE_LISTEN_URL', e.DATABASE_LISTEN_URL)}: needs DATABASE_URL to be set`,
    ]);
  }
  if (e.TRAEFIK_REDIS_ROOT !== undefined && e.REDIS_URL === undefined) {
    throw new ConfigError([`TRAEFIK_REDIS_ROOT=${JSON.stringify(e.TRAEFIK_REDIS_ROOT)}: needs REDIS_URL to be set`]);
  }
  if (
    e.TRAEFIK_REDIS_ROOT !== undefined &&
    e.REDIS_URL !== undefined &&
    parseRedisTarget(e.REDIS_URL).kind === 'cluster'
  ) {
    // Its store (kvtools/redis) opens one plain connection: it would list one node's keys only.
    throw new ConfigError([
      `TRAEFIK_REDIS_ROOT=${JSON.stringify(e.TRAEFIK_REDIS_ROOT)}: Traefik's Redis provider cannot read a Redis Cluster; give REDIS_URL a single server or a Sentinel master (redis+sentinel://), or leave TRAEFIK_REDIS_ROOT unset and use the file or HTTP provider`,
    ]);
  }
  const webEntryPoints = [e.TRAEFIK_ENTRYPOINT_HTTP, e.TRAEFIK_ENTRYPOINT_HTTPS];
  const streamProblems = [
    ...e.TRAEFIK_TCP_ENTRYPOINTS.filter((name) => webEntryPoints.includes(name)).map(
      (name) =>
        `TRAEFIK_TCP_ENTRYPOINTS: ${name} is a web entry point: a TCP route without TLS would take all its traffic (TCP routes with TLS use ${e.TRAEFIK_ENTRYPOINT_HTTPS} without being listed)`,
    ),
    ...e.TRAEFIK_UDP_ENTRYPOINTS.filter(
      (name) => webEntryPoints.includes(name) || e.TRAEFIK_TCP_ENTRYPOINTS.includes(name),
    ).map(
      (name) =>
        `TRAEFIK_UDP_ENTRYPOINTS: ${name} is also a TCP entry point; a Traefik entry point listens on TCP or UDP`,
    ),
  ];
  if (streamProblems.length > 0) throw new ConfigError(streamProblems);
  return Object.freeze({
    host: e.HOST,
    port: e.PORT,
    databaseUrl: e.DATABASE_URL,
    metricsDatabaseUrl: e.METRICS_DATABASE_URL ?? e.DATABASE_URL,
    databaseListenUrl: e.DATABASE_LISTEN_URL,
    redisUrl: e.REDIS_URL,
    dockerHost: e.DOCKER_HOST,
    roles: Object.freeze(e.EDGE_ROLES),
    labelPrefix: e.LABEL_PREFIX,
    traefikDynamicDir: path.resolve(cwd, e.TRAEFIK_DYNAMIC_DIR),
    dataDir: path.resolve(cwd, e.DATA_DIR),
    embeddedPostgresPort: e.EMBEDDED_POSTGRES_PORT,
    logLevel: e.LOG_LEVEL,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_SECONDS * 1000,
    discoveryResyncMs: e.DISCOVERY_RESYNC_SECONDS * 1000,
    metrics: Object.freeze({
      intervalMs: e.METRICS_INTERVAL_SECONDS * 1000,
      liveWindowMs: e.METRICS_LIVE_WINDOW_SECONDS * 1000,
      liveMaxBytes: e.METRICS_LIVE_MAX_BYTES,
      bufferMaxRows: e.METRICS_BUFFER_MAX_ROWS,
      retentionDays: e.METRICS_RETENTION_DAYS,
      rollupRetentionDays: e.METRICS_ROLLUP_RETENTION_DAYS,
      source: e.STATS_SOURCE,
      dockerConcurrency: e.STATS_DOCKER_CONCURRENCY,
      cgroupRoot: e.CGROUP_ROOT,
      procRoot: e.PROC_ROOT,
    }),
    feed: Object.freeze({
      auth: e.FEED_AUTH,
      jwtSecret: e.FEED_JWT_SECRET,
      jwksUrl: e.FEED_JWKS_URL,
      issuer: e.FEED_JWT_ISSUER,
      audience: e.FEED_JWT_AUDIENCE,
      requireExpiry: e.FEED_JWT_REQUIRE_EXP,
      maxBufferedBytes: e.FEED_MAX_BUFFERED_BYTES,
      slowGraceMs: e.FEED_SLOW_GRACE_SECONDS * 1000,
      heartbeatMs: e.FEED_HEARTBEAT_SECONDS * 1000,
      maxSubscriptions: e.FEED_MAX_SUBSCRIPTIONS,
    }),
    traefik: Object.freeze({
      entryPoints: Object.freeze({ http: e.TRAEFIK_ENTRYPOINT_HTTP, https: e.TRAEFIK_ENTRYPOINT_HTTPS }),
      certResolver: e.TRAEFIK_CERT_RESOLVER,
      network: e.TRAEFIK_NETWORK,
      fallbackUrl: (e.TRAEFIK_FALLBACK_URL ?? `http://127.0.0.1:${e.PORT}`).replace(/\/$/, ''),
      httpToken: e.TRAEFIK_HTTP_TOKEN,
      redisRoot: e.TRAEFIK_REDIS_ROOT,
    }),
    nodes: Object.freeze({ diskPaths: Object.freeze(e.NODE_DISK_PATHS) }),
    traefikMetrics: Object.freeze({
      urls: Object.freeze(e.TRAEFIK_METRICS_URLS ?? []),
      timeoutMs: e.TRAEFIK_METRICS_TIMEOUT_SECONDS * 1000,
      maxBytes: e.TRAEFIK_METRICS_MAX_BYTES,
    }),
    routing: Object.freeze({
      reservedHosts: Object.freeze([...new Set(['*.localhost', ...e.ROUTING_RESERVED_HOSTS])]),
      hostSharing: e.ROUTING_HOST_SHARING,
      forwardAuthAllowed: Object.freeze(e.TRAEFIK_FORWARD_AUTH_ALLOWED),
      tcpEntryPoints: Object.freeze(e.TRAEFIK_TCP_ENTRYPOINTS),
      udpEntryPoints: Object.freeze(e.TRAEFIK_UDP_ENTRYPOINTS),
    }),
  });
}

export function hasRole(config: Pick<Config, 'roles'>, role: Role): boolean {
  return config.roles.includes(role);
}
