/**
 * Turns an untrusted deployment_routing row into a Route, or a reason to reject it. Nothing from a
 * row reaches a Traefik rule or name without passing through here: domains are RFC 1123 host
 * names (IDN → punycode), paths are a strict character set, middlewares pass an allow-list
 * validated field by field. A rejected row is skipped on its own; it never affects another.
 */
import { isIP } from 'node:net';
import { domainToASCII, domainToUnicode } from 'node:url';
import { IDENTIFIER_PATTERN } from '../lib/identifiers.js';
import { DEFAULT_HOST_POLICY, hostRefusal, type HostPolicy } from './host-policy.js';
import { MAX_MIDDLEWARE_BYTES, type RoutingRow } from './routing-table.js';
import {
  parseMiddlewares,
  parseTcpMiddlewares,
  type MiddlewareType,
  type Middlewares,
  type MiddlewarePolicy,
  type TcpMiddlewares,
  type TcpMiddlewareType,
} from './middleware-validation.js';
import { parsePath } from './route-path.js';

export { DURATION_PATTERN, PATH_PATTERN } from './route-path.js';
export { MIDDLEWARE_TYPES, NO_MIDDLEWARES, type Middlewares, type MiddlewareType } from './middleware-validation.js';

export type Strategy = 'wrr' | 'p2c';
export type UpstreamProtocol = 'http' | 'https' | 'h2c';
export type StreamProtocol = 'tcp' | 'udp';

/**
 * A TCP or UDP route. A TCP route with TLS routes by SNI (HostSNI on its host) on the HTTPS entry
 * point or one of the operator's TCP entry points, and may share it; a TCP route without TLS has no
 * SNI to route by (HostSNI(`*`)), and a UDP route no rule at all: each holds its entry point alone.
 */
export interface StreamRoute {
  readonly kind: StreamProtocol;
  readonly entryPoint: string;
  /** TCP with TLS: terminated here (with the route's resolver) or passed through to the deployment. */
  readonly tls: 'terminate' | 'passthrough' | undefined;
  /** The route is the only one its entry point may carry. */
  readonly exclusive: boolean;
  readonly middlewares: TcpMiddlewares;
  readonly middlewareOrder: readonly TcpMiddlewareType[];
}

/** Where TCP and UDP routes may attach: entry points of Traefik's static configuration. */
export interface StreamEntryPoints {
  /** Where a TCP route with TLS goes unless it names another (HTTP and TCP routers share it). */
  readonly https: string;
  /** Entry points a TCP route may name. */
  readonly tcp: readonly string[];
  /** Entry points a UDP route may name; a UDP route must name one. */
  readonly udp: readonly string[];
}

export interface Route {
  readonly id: string;
  readonly deploymentId: string;
  readonly serviceName: string;
  /** ASCII, lowercase; for a wildcard, the part after "*.". */
  readonly host: string;
  /** The domain as the row gives it (bounded), when it differs from the normalised form. */
  readonly rawDomain: string | undefined;
  /** created_at in ms (Infinity when unknown): with the id, which of two claims came first. */
  readonly createdMs: number;
  readonly wildcard: boolean;
  /** '' when the route matches every path. */
  readonly pathPrefix: string;
  readonly targetPort: number;
  /** The upstream's protocol: http, https, h2c; or tcp, udp for a stream route. */
  readonly protocol: UpstreamProtocol | StreamProtocol;
  /** TCP and UDP routes only (protocol tcp or udp). */
  readonly stream: StreamRoute | undefined;
  readonly tls: { readonly certResolver: string } | undefined;
  readonly strategy: Strategy;
  readonly sticky: boolean;
  readonly middlewares: Middlewares;
  /** The order the middlewares run in (the row's, or the default). */
  readonly middlewareOrder: readonly MiddlewareType[];
  /** Its share of a split (see traefik-config.ts); undefined: not part of one. */
  readonly weight: number | undefined;
  /**
   * A shadow's share (0-100 %) of the requests of the route holding its host and path, copied to
   * it (see traefik-config.ts); undefined: not a shadow.
   */
  readonly mirrorPercent: number | undefined;
  /** Accepted, but something was not as asked (e.g. an unknown algorithm fell back to the default). */
  readonly warnings: readonly string[];
}

export type Validation = { ok: true; route: Route } | { ok: false; field: string; reason: string };

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const PLAIN_HOST = /^[a-z0-9.-]+$/;
/** Lowercase ASCII labels (LABEL) joined by dots: a valid host as it is, if at most 253 characters. */
const PLAIN_VALID_HOST = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
/** Characters that can never be part of a host name, checked before IDN conversion. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what this rejects
const FORBIDDEN_IN_HOST = /[\s`'"()|&!,;\\/<>{}[\]=?#@%*^$+~:]|[\u0000-\u001f\u007f-\u009f]/u;
const RESOLVER = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
/** Traefik entry point names as an operator writes them; a row's must also be on the allow-list. */
export const ENTRY_POINT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** A split's weights are relative; past this, a typo more likely than an intent. */
export const MAX_WEIGHT = 1_000_000;

/** Validates one host name (no wildcard) and returns its ASCII form, or why it is not one. */
export function normalizeHost(value: string): { host: string } | { reason: string } {
  if (value.length === 0) return { reason: 'is empty' };
  if (value.length > 253) return { reason: 'is longer than 253 characters' };
  const bare = value.endsWith('.') ? value.slice(0, -1) : value;
  // Nearly every host is already lowercase ASCII labels: one regex settles it, unless a label is
  // punycode (its IDNA validity needs the conversion) or the top-level label is all digits.
  // (value is at most 253 characters, so bare is too.)
  if (PLAIN_VALID_HOST.test(bare) && !bare.includes('xn--') && !numericTopLabel(bare)) return { host: bare };
  if (FORBIDDEN_IN_HOST.test(value)) return { reason: 'contains a character not allowed in a host name' };
  // Lowercase letters, digits, dots and hyphens with no punycode label are their own ASCII form:
  // only other names need the (comparatively costly) IDNA conversion and its checks.
  const ascii = PLAIN_HOST.test(bare) && !bare.includes('xn--') ? bare : domainToASCII(bare);
  if (ascii === '') return { reason: 'is not a valid (internationalised) host name' };
  // IDNA maps some characters to others or to nothing (zero-width space, soft hyphen, fullwidth
  // letters, the ideographic full stop): such a name looks unlike the host it is served as, and a
  // uniqueness check on raw strings would not see the collision. Only case may differ.
  const lowered = bare.toLowerCase();
  if (lowered !== ascii && lowered !== domainToUnicode(ascii)) {
    return {
      reason: `contains characters that IDNA changes or removes (zero-width, soft hyphen, fullwidth or compatibility forms): it would be served as ${ascii}`,
    };
  }
  if (ascii.length > 253) return { reason: 'is longer than 253 characters in ASCII form' };
  if (/^[0-9.]+$/.test(ascii) && isIP(ascii) !== 0) return { reason: 'is an IP address, not a host name' };
  const labels = ascii.split('.');
  const bad = labels.find((label) => !LABEL.test(label));
  if (bad !== undefined) {
    return {
      reason: bad.length > 63 ? 'has a label longer than 63 characters' : `has an invalid label "${bad.slice(0, 70)}"`,
    };
  }
  if (numericTopLabel(ascii)) return { reason: 'has an all-numeric top-level label' };
  return { host: ascii };
}

/** Whether the last label is all digits: scanned from the end, where a regex would try every position. */
function numericTopLabel(host: string): boolean {
  let i = host.length - 1;
  while (i >= 0 && host.charCodeAt(i) >= 0x30 && host.charCodeAt(i) <= 0x39) i--;
  return i < host.length - 1 && (i < 0 || host.charCodeAt(i) === 0x2e);
}

function parseDomain(value: unknown, policy: HostPolicy): { host: string; wildcard: boolean } | { reason: string } {
  if (typeof value !== 'string') return { reason: 'is not a string' };
  const wildcard = value.startsWith('*.');
  const rest = wildcard ? value.slice(2) : value;
  const result = normalizeHost(rest);
  if ('reason' in result) return result;
  if (wildcard && !result.host.includes('.'))
    return { reason: 'wildcard must cover at least two labels (*.example.com)' };
  const refused = hostRefusal(result.host, wildcard, policy);
  if (refused !== undefined) return { reason: `${wildcard ? '*.' : ''}${result.host} ${refused}` };
  return { host: result.host, wildcard };
}

/** A Map, not an object literal: a row's `constructor` or `__proto__` must find nothing. */
const ALGORITHMS: ReadonlyMap<string, { strategy: Strategy; sticky: boolean }> = new Map([
  ['round-robin', { strategy: 'wrr', sticky: false }],
  ['round_robin', { strategy: 'wrr', sticky: false }],
  ['roundrobin', { strategy: 'wrr', sticky: false }],
  ['wrr', { strategy: 'wrr', sticky: false }],
  ['p2c', { strategy: 'p2c', sticky: false }],
  ['least-connections', { strategy: 'p2c', sticky: false }],
  ['least_conn', { strategy: 'p2c', sticky: false }],
  ['sticky', { strategy: 'wrr', sticky: true }],
]);
const ROUND_ROBIN = ALGORITHMS.get('wrr')!;
/** Row ids appear in statuses and logs: UUIDs by default, anything printable up to this length. */
const ROW_ID = /^[\x21-\x7e]{1,200}$/;

function reject(field: string, reason: string): Validation {
  return { ok: false, field, reason };
}

/**
 * Shared by every route that has no warning, no middleware, or the same certificate resolver: a
 * route is cached for as long as its row is unchanged, and 100,000 routes should not each keep
 * their own copies of the same empty values.
 */
export const NO_WARNINGS: readonly string[] = Object.freeze([]);
const tlsByResolver = new Map<string, { readonly certResolver: string }>();

function tlsFor(certResolver: string): { readonly certResolver: string } {
  let tls = tlsByResolver.get(certResolver);
  if (tls === undefined) {
    tls = Object.freeze({ certResolver });
    // Resolver names are few; the bound only keeps odd rows from growing the map.
    if (tlsByResolver.size < 1024) tlsByResolver.set(certResolver, tls);
  }
  return tls;
}

export interface ValidationDefaults {
  readonly certResolver: string;
  readonly hosts?: HostPolicy;
  readonly middlewares?: MiddlewarePolicy;
  /** Default: TCP routes with TLS on websecure, no TCP or UDP entry point of their own. */
  readonly entryPoints?: StreamEntryPoints;
}

const DEFAULT_STREAM_ENTRY_POINTS: StreamEntryPoints = { https: 'websecure', tcp: [], udp: [] };

const NO_FORWARD_AUTH: MiddlewarePolicy = { forwardAuthAllowed: [] };

export function validateRow(row: RoutingRow, defaults: ValidationDefaults): Validation {
  /** Allocated for the rare row that has one. */
  let warnings: string[] | undefined;

  if (typeof row.id !== 'string' || !ROW_ID.test(row.id))
    return reject('id', 'must be 1-200 printable ASCII characters');
  if (typeof row.deployment_id !== 'string' || !IDENTIFIER_PATTERN.test(row.deployment_id)) {
    return reject('deployment_id', 'must be 1-128 characters of letters, digits, _ . : -');
  }
  const serviceName = row.service_name ?? 'default';
  if (typeof serviceName !== 'string' || !IDENTIFIER_PATTERN.test(serviceName)) {
    return reject('service_name', 'must be 1-128 characters of letters, digits, _ . : -');
  }
  const domain = parseDomain(row.domain, defaults.hosts ?? DEFAULT_HOST_POLICY);
  if ('reason' in domain) return reject('domain', domain.reason);
  const path = parsePath(row.path_prefix);
  if ('reason' in path) return reject('path_prefix', path.reason);
  if (
    typeof row.target_port !== 'number' ||
    !Number.isInteger(row.target_port) ||
    row.target_port < 1 ||
    row.target_port > 65535
  ) {
    return reject('target_port', 'must be a whole number from 1 to 65535');
  }
  const protocol = row.protocol ?? 'http';
  if (protocol !== 'http' && protocol !== 'https' && protocol !== 'h2c' && protocol !== 'tcp' && protocol !== 'udp')
    return reject('protocol', 'must be http, https, h2c, tcp or udp');
  if (row.ssl_enabled !== null && row.ssl_enabled !== undefined && typeof row.ssl_enabled !== 'boolean') {
    return reject('ssl_enabled', 'must be a boolean');
  }
  if (row.tls_passthrough !== null && row.tls_passthrough !== undefined && typeof row.tls_passthrough !== 'boolean') {
    return reject('tls_passthrough', 'must be a boolean');
  }
  let certResolver = defaults.certResolver;
  if (row.ssl_cert_resolver !== null && row.ssl_cert_resolver !== undefined && row.ssl_cert_resolver !== '') {
    if (typeof row.ssl_cert_resolver !== 'string' || !RESOLVER.test(row.ssl_cert_resolver)) {
      return reject('ssl_cert_resolver', 'must be 1-64 characters of letters, digits, _ -');
    }
    certResolver = row.ssl_cert_resolver;
  }
  let algorithm = ROUND_ROBIN;
  if (row.load_balancer_algo !== null && row.load_balancer_algo !== undefined && row.load_balancer_algo !== '') {
    const known =
      typeof row.load_balancer_algo === 'string' ? ALGORITHMS.get(row.load_balancer_algo.toLowerCase()) : undefined;
    if (known) algorithm = known;
    else {
      (warnings ??= []).push(
        `load_balancer_algo ${JSON.stringify(row.load_balancer_algo)?.slice(0, 40) ?? '?'} is not one of round-robin, p2c, sticky: using round-robin`,
      );
    }
  }
  let weight: number | undefined;
  if (row.weight !== null && row.weight !== undefined) {
    if (typeof row.weight !== 'number' || !Number.isInteger(row.weight) || row.weight < 0 || row.weight > MAX_WEIGHT)
      return reject('weight', `must be a whole number from 0 to ${MAX_WEIGHT} (or null: not split)`);
    weight = row.weight;
  }
  let mirrorPercent: number | undefined;
  if (row.mirror_percent !== null && row.mirror_percent !== undefined) {
    const percent = row.mirror_percent;
    if (typeof percent !== 'number' || !Number.isInteger(percent) || percent < 0 || percent > 100)
      return reject('mirror_percent', 'must be a whole number from 0 to 100 (or null: not a shadow)');
    if (weight !== undefined)
      return reject('mirror_percent', 'a shadow takes copies of requests, not a share of them: it has no weight');
    mirrorPercent = percent;
  }
  if (row.middleware_oversized === true) return reject('middleware', `is larger than ${MAX_MIDDLEWARE_BYTES} bytes`);
  let stream: StreamRoute | undefined;
  if (protocol === 'tcp' || protocol === 'udp') {
    if (mirrorPercent !== undefined) return reject('mirror_percent', 'mirroring is for HTTP routes');
    const checked = validateStream(
      row,
      protocol,
      path.path,
      weight,
      defaults.entryPoints ?? DEFAULT_STREAM_ENTRY_POINTS,
    );
    if ('field' in checked) return reject(checked.field, checked.reason);
    stream = checked;
    if (algorithm.strategy !== 'wrr' || algorithm.sticky)
      (warnings ??= []).push(`load_balancer_algo: ${protocol.toUpperCase()} routes balance round robin`);
  } else if (row.tls_passthrough === true) {
    return reject('tls_passthrough', 'applies to TCP routes only (an HTTP route terminates TLS to route by path)');
  } else if (row.entry_point !== null && row.entry_point !== undefined && row.entry_point !== '') {
    return reject(
      'entry_point',
      'applies to TCP and UDP routes only (HTTP routes use the configured web entry points)',
    );
  }
  // A stream route's middlewares are its TCP ones (in `stream`): none of HTTP's.
  const middlewares = parseMiddlewares(
    stream === undefined ? row.middleware : null,
    defaults.middlewares ?? NO_FORWARD_AUTH,
  );
  if ('reason' in middlewares) return reject('middleware', middlewares.reason);
  const rawDomain = (row.domain as string).startsWith('*.') ? (row.domain as string).slice(2) : (row.domain as string);

  return {
    ok: true,
    route: {
      id: row.id,
      deploymentId: row.deployment_id,
      serviceName,
      host: domain.host,
      rawDomain: rawDomain === domain.host ? undefined : rawDomain.slice(0, 300),
      createdMs:
        typeof row.created_ms === 'number' && Number.isFinite(row.created_ms)
          ? row.created_ms
          : Number.POSITIVE_INFINITY,
      wildcard: domain.wildcard,
      pathPrefix: path.path,
      targetPort: row.target_port,
      protocol,
      stream,
      tls: row.ssl_enabled === true ? tlsFor(certResolver) : undefined,
      strategy: algorithm.strategy,
      sticky: algorithm.sticky,
      middlewares: middlewares.middlewares,
      middlewareOrder: middlewares.order,
      weight,
      mirrorPercent,
      warnings: warnings ?? NO_WARNINGS,
    },
  };
}

/**
 * The TCP/UDP part of a row: its entry point (on the operator's allow-list, exactly as written
 * there: a lookalike in case or width is not the same entry point), TLS, and TCP middlewares.
 */
function validateStream(
  row: RoutingRow,
  kind: StreamProtocol,
  pathPrefix: string,
  weight: number | undefined,
  entryPoints: StreamEntryPoints,
): StreamRoute | { field: string; reason: string } {
  const name = kind.toUpperCase();
  if (pathPrefix !== '') return { field: 'path_prefix', reason: `a ${name} route has no path` };
  if (weight !== undefined) return { field: 'weight', reason: 'traffic splits are for HTTP routes' };
  const ssl = row.ssl_enabled === true;
  const passthrough = row.tls_passthrough === true;
  if (kind === 'udp' && ssl) return { field: 'ssl_enabled', reason: 'UDP has no TLS' };
  if (passthrough && !ssl) return { field: 'tls_passthrough', reason: 'needs ssl_enabled (TLS to pass through)' };
  const allowed = kind === 'tcp' ? entryPoints.tcp : entryPoints.udp;
  const setting = kind === 'tcp' ? 'TRAEFIK_TCP_ENTRYPOINTS' : 'TRAEFIK_UDP_ENTRYPOINTS';
  let entryPoint: string;
  const asked = row.entry_point;
  if (asked === null || asked === undefined || asked === '') {
    if (kind === 'udp')
      return {
        field: 'entry_point',
        reason: `a UDP route names its entry point (one of ${setting}: ${listed(allowed)})`,
      };
    if (!ssl) {
      return {
        field: 'entry_point',
        reason: `a TCP route without TLS has no server name to route by: it needs an entry point of its own (one of ${setting}: ${listed(allowed)})`,
      };
    }
    entryPoint = entryPoints.https;
  } else {
    if (typeof asked !== 'string' || !ENTRY_POINT_NAME.test(asked))
      return { field: 'entry_point', reason: 'must be 1-64 characters of letters, digits, _ . -' };
    if (!allowed.includes(asked) && !(kind === 'tcp' && ssl && asked === entryPoints.https))
      return { field: 'entry_point', reason: `${asked} is not one of ${setting}: ${listed(allowed)}` };
    entryPoint = asked;
  }
  if (kind === 'udp' && row.middleware !== null && row.middleware !== undefined)
    return { field: 'middleware', reason: 'Traefik has no UDP middlewares' };
  const parsed = parseTcpMiddlewares(kind === 'udp' ? null : row.middleware);
  if ('reason' in parsed) return { field: 'middleware', reason: parsed.reason };
  return {
    kind,
    entryPoint,
    tls: ssl ? (passthrough ? 'passthrough' : 'terminate') : undefined,
    exclusive: !ssl,
    middlewares: parsed.middlewares,
    middlewareOrder: parsed.order,
  };
}

function listed(names: readonly string[]): string {
  return names.length === 0 ? 'none configured' : names.join(', ');
}
