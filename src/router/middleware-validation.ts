/**
 * A routing row's middlewares: an allow-list of Traefik middleware types, each validated field by
 * field, in the order the row gives them (a JSON array of one-key objects), or in a safe default
 * order (a JSON object keyed by type, whose key order PostgreSQL's jsonb does not keep):
 * refusals first (source range, rate and concurrency limits), then the redirect to HTTPS, then
 * authentication, then rewriting, protection of the upstream, error pages, and encoding last.
 *
 * forwardAuth may only call addresses under the operator's prefixes (TRAEFIK_FORWARD_AUTH_ALLOWED),
 * written in their canonical form, so that a row cannot send every request's credentials to a
 * host of its choosing. The circuit breaker's expression goes through its own grammar
 * (circuit-breaker-expression.ts).
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { exceedsJsonLimits } from '../lib/json-bounds.js';
import { parseBreakerExpression } from './circuit-breaker-expression.js';
import { DURATION_PATTERN, parsePath } from './route-path.js';

const duration = z.string().regex(DURATION_PATTERN, 'must be a duration like 500ms, 1s, 5m');
const int = (min: number, max: number) => z.number().int().min(min).max(max);
const headerName = z.string().regex(/^[A-Za-z0-9-]{1,128}$/, 'must be a header name');
const headerValue = z.string().regex(/^[\x20-\x7e]{0,1024}$/, 'must be printable ASCII, at most 1024 characters');
const mimeType = z.string().regex(/^[a-z0-9.+-]{1,64}\/[a-z0-9.+*-]{1,64}$/, 'must be a MIME type');
const origin = z
  .string()
  .regex(/^(\*|https?:\/\/[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?)$/, 'must be * or an http(s) origin')
  .refine((value) => {
    const port = /:([0-9]{1,5})$/.exec(value)?.[1];
    return port === undefined || (Number(port) >= 1 && Number(port) <= 65535);
  }, 'has a port outside 1-65535');
const pathSchema = z.string().refine((p) => 'path' in parsePath(p) && p.startsWith('/'), 'must be a path');
const cidr = z.string().refine((value) => {
  const [ip, bits, extra] = value.split('/');
  const family = isIP(ip ?? '');
  if (family === 0 || extra !== undefined) return false;
  if (bits === undefined) return true;
  return /^[0-9]{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}, 'must be an IP address or CIDR range');

/**
 * htpasswd lines Traefik verifies: bcrypt ($2a$, $2b$, $2y$), Apache MD5 ($apr1$) and {SHA}. A
 * plain password (Traefik would compare it as it is) and anything else are refused; so are a
 * newline or a colon in the user name, which would split or shift the line.
 */
const htpasswdLine = z
  .string()
  .max(256)
  .refine(
    (line) =>
      /^[A-Za-z0-9._@-]{1,64}:(\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}|\$apr1\$[./A-Za-z0-9]{1,8}\$[./A-Za-z0-9]{22}|\{SHA\}[A-Za-z0-9+/]{27}=)$/.test(
        line,
      ),
    'must be user:hash with a bcrypt, apr1 or {SHA} hash (a plain password is refused)',
  );

/** A status code or range of them, 400-599, as Traefik's errors middleware takes them ("500-599"). */
const statusRange = z
  .string()
  .regex(/^[45][0-9]{2}(-[45][0-9]{2})?$/, 'must be a status code or range between 400 and 599 (500-599)')
  .refine((range) => {
    const [from, to] = range.split('-').map(Number);
    return to === undefined || from! <= to;
  }, 'must be a range from low to high');

const middlewareSchema = z
  .strictObject({
    rateLimit: z.strictObject({
      average: int(0, 1_000_000),
      period: duration.optional(),
      burst: int(1, 1_000_000).optional(),
    }),
    compress: z.union([
      z.literal(true),
      z.strictObject({
        minResponseBodyBytes: int(0, 1_000_000_000).optional(),
        excludedContentTypes: z.array(mimeType).max(32).optional(),
      }),
    ]),
    headers: z.strictObject({
      customRequestHeaders: z.record(headerName, headerValue).optional(),
      customResponseHeaders: z.record(headerName, headerValue).optional(),
      stsSeconds: int(0, 1_000_000_000).optional(),
      stsIncludeSubdomains: z.boolean().optional(),
      stsPreload: z.boolean().optional(),
      forceSTSHeader: z.boolean().optional(),
      frameDeny: z.boolean().optional(),
      contentTypeNosniff: z.boolean().optional(),
      browserXssFilter: z.boolean().optional(),
      referrerPolicy: z
        .enum([
          'no-referrer',
          'no-referrer-when-downgrade',
          'origin',
          'origin-when-cross-origin',
          'same-origin',
          'strict-origin',
          'strict-origin-when-cross-origin',
          'unsafe-url',
        ])
        .optional(),
      contentSecurityPolicy: headerValue.optional(),
      accessControlAllowOriginList: z.array(origin).max(32).optional(),
      accessControlAllowMethods: z
        .array(z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']))
        .max(7)
        .optional(),
      accessControlAllowHeaders: z.array(headerName).max(32).optional(),
      accessControlMaxAge: int(0, 86_400).optional(),
      addVaryHeader: z.boolean().optional(),
    }),
    redirectScheme: z.strictObject({
      scheme: z.enum(['https', 'http']),
      permanent: z.boolean().optional(),
      port: z
        .string()
        .regex(/^[0-9]{1,5}$/)
        .refine((p) => Number(p) >= 1 && Number(p) <= 65535, 'must be a port')
        .optional(),
    }),
    /** true strips the route's own path prefix; or a list of prefixes to strip. */
    stripPrefix: z.union([z.literal(true), z.strictObject({ prefixes: z.array(pathSchema).min(1).max(16) })]),
    ipAllowList: z.strictObject({ sourceRange: z.array(cidr).min(1).max(64) }),
    retry: z.strictObject({ attempts: int(1, 10), initialInterval: duration.optional() }),
    basicAuth: z.strictObject({
      users: z.array(htpasswdLine).min(1).max(100),
      realm: z
        .string()
        .regex(/^[\x20-\x7e]{1,64}$/, 'must be 1-64 printable ASCII characters')
        .refine((v) => !v.includes('"'), 'must not contain "')
        .optional(),
      removeHeader: z.boolean().optional(),
    }),
    forwardAuth: z.strictObject({
      address: z.string().min(1).max(2048),
      trustForwardHeader: z.boolean().optional(),
      authResponseHeaders: z.array(headerName).max(32).optional(),
      authRequestHeaders: z.array(headerName).max(32).optional(),
    }),
    inFlightReq: z.strictObject({ amount: int(1, 1_000_000) }),
    buffering: z.strictObject({
      maxRequestBodyBytes: int(0, 10_737_418_240).optional(),
      memRequestBodyBytes: int(0, 1_073_741_824).optional(),
      maxResponseBodyBytes: int(0, 10_737_418_240).optional(),
      memResponseBodyBytes: int(0, 1_073_741_824).optional(),
    }),
    /** 4xx/5xx answers replaced by this service's page for the status (true: 500-599). */
    errors: z.union([z.literal(true), z.strictObject({ status: z.array(statusRange).min(1).max(16) })]),
    circuitBreaker: z.strictObject({
      expression: z.string(),
      checkPeriod: duration.optional(),
      fallbackDuration: duration.optional(),
      recoveryDuration: duration.optional(),
      responseCode: int(400, 599).optional(),
    }),
  })
  .partial();

export type Middlewares = z.infer<typeof middlewareSchema>;
export type MiddlewareType = keyof Middlewares;
export const MIDDLEWARE_TYPES = Object.keys(middlewareSchema.shape) as readonly MiddlewareType[];

/** The order of an object-form document (see the top of this file). */
export const DEFAULT_MIDDLEWARE_ORDER: readonly MiddlewareType[] = [
  'ipAllowList',
  'rateLimit',
  'inFlightReq',
  'redirectScheme',
  'basicAuth',
  'forwardAuth',
  'stripPrefix',
  'headers',
  'circuitBreaker',
  'retry',
  'buffering',
  'errors',
  'compress',
];

/** The middlewares of a row that has none: shared, so that rendering can tell at a glance. */
export const NO_MIDDLEWARES: Middlewares = Object.freeze({});
export const NO_MIDDLEWARE_ORDER: readonly MiddlewareType[] = Object.freeze([]);

export interface MiddlewarePolicy {
  /** URL prefixes forwardAuth addresses must start with (canonical, see forwardAuthPrefixes); empty: forwardAuth is refused. */
  readonly forwardAuthAllowed: readonly string[];
}

/** Far beyond any document the schema accepts: checked first, without recursion. */
const MIDDLEWARE_LIMITS = { maxDepth: 8, maxNodes: 2_000, forbiddenKeys: ['__proto__', 'constructor', 'prototype'] };

/**
 * A middleware document in either form, checked for size and for types outside `types`: the
 * fields of each type, with its order (undefined for the object form).
 */
function readDocument<T extends string>(
  value: object,
  types: readonly T[],
): { document: Record<string, unknown>; order: T[] | undefined } | { reason: string } {
  const beyond = exceedsJsonLimits(value, MIDDLEWARE_LIMITS);
  if (beyond !== undefined) return { reason: beyond };
  let document: Record<string, unknown>;
  let order: T[] | undefined;
  if (Array.isArray(value)) {
    // The array form: its order is the order the middlewares run in.
    document = Object.create(null) as Record<string, unknown>;
    order = [];
    for (const [i, item] of (value as unknown[]).entries()) {
      const keys = item !== null && typeof item === 'object' && !Array.isArray(item) ? Object.keys(item) : [];
      if (keys.length !== 1) return { reason: `[${i}]: must be an object with exactly one middleware type` };
      const type = keys[0]!;
      if (Object.hasOwn(document, type))
        return { reason: `[${i}]: ${JSON.stringify(type.slice(0, 40))} is given twice` };
      document[type] = (item as Record<string, unknown>)[type];
      order.push(type as T);
    }
  } else document = value as Record<string, unknown>;
  const unknownTypes = Object.keys(document).filter((key) => !(types as readonly string[]).includes(key));
  if (unknownTypes.length > 0) {
    return {
      reason: `unknown middleware ${unknownTypes.map((t) => JSON.stringify(t.slice(0, 40))).join(', ')} (allowed: ${types.join(', ')})`,
    };
  }
  return { document, order };
}

const MIDDLEWARE_FORMS = 'must be a JSON object keyed by middleware type, or an array of one-key objects';

function firstIssue(error: z.ZodError): { reason: string } {
  const issue = error.issues[0];
  return { reason: `${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}` };
}

export function parseMiddlewares(
  value: unknown,
  policy: MiddlewarePolicy,
): { middlewares: Middlewares; order: readonly MiddlewareType[] } | { reason: string } {
  if (value === null || value === undefined) return { middlewares: NO_MIDDLEWARES, order: NO_MIDDLEWARE_ORDER };
  if (typeof value !== 'object') return { reason: MIDDLEWARE_FORMS };
  const read = readDocument(value, MIDDLEWARE_TYPES);
  if ('reason' in read) return read;
  const { document, order } = read;
  const parsed = middlewareSchema.safeParse({ ...document });
  if (!parsed.success) return firstIssue(parsed.error);
  const middlewares = parsed.data;
  if (middlewares.forwardAuth) {
    const refused = forwardAuthRefusal(middlewares.forwardAuth.address, policy.forwardAuthAllowed);
    if (refused !== undefined) return { reason: `forwardAuth.address: ${refused}` };
  }
  if (middlewares.circuitBreaker) {
    const expression = parseBreakerExpression(middlewares.circuitBreaker.expression);
    if ('reason' in expression) return { reason: `circuitBreaker.expression: ${expression.reason}` };
    middlewares.circuitBreaker = { ...middlewares.circuitBreaker, expression: expression.expression };
  }
  return {
    middlewares,
    order: order ?? DEFAULT_MIDDLEWARE_ORDER.filter((type) => middlewares[type] !== undefined),
  };
}

/**
 * A TCP route's middlewares: Traefik's TCP middlewares are a source-range allow-list and a limit on
 * simultaneous connections; everything else is HTTP and refused here.
 */
const tcpMiddlewareSchema = z
  .strictObject({
    ipAllowList: z.strictObject({ sourceRange: z.array(cidr).min(1).max(64) }),
    inFlightConn: z.strictObject({ amount: int(1, 1_000_000) }),
  })
  .partial();

export type TcpMiddlewares = z.infer<typeof tcpMiddlewareSchema>;
export type TcpMiddlewareType = keyof TcpMiddlewares;
export const TCP_MIDDLEWARE_TYPES = Object.keys(tcpMiddlewareSchema.shape) as readonly TcpMiddlewareType[];
export const NO_TCP_MIDDLEWARES: TcpMiddlewares = Object.freeze({});
const NO_TCP_ORDER: readonly TcpMiddlewareType[] = Object.freeze([]);

export function parseTcpMiddlewares(
  value: unknown,
): { middlewares: TcpMiddlewares; order: readonly TcpMiddlewareType[] } | { reason: string } {
  if (value === null || value === undefined) return { middlewares: NO_TCP_MIDDLEWARES, order: NO_TCP_ORDER };
  if (typeof value !== 'object') return { reason: MIDDLEWARE_FORMS };
  const read = readDocument(value, TCP_MIDDLEWARE_TYPES);
  if ('reason' in read) return { reason: `${read.reason} (a TCP route takes TCP middlewares only)` };
  const parsed = tcpMiddlewareSchema.safeParse({ ...read.document });
  if (!parsed.success) return firstIssue(parsed.error);
  const middlewares = parsed.data;
  // Refusals by source first, then the connection limit: a refused client takes no slot.
  return { middlewares, order: read.order ?? TCP_MIDDLEWARE_TYPES.filter((type) => middlewares[type] !== undefined) };
}

/**
 * Why a forwardAuth address is refused, if it is: it must be an http(s) URL without credentials,
 * written as the URL parser writes it (no case, dot-segment or escape games that would make a
 * prefix check see one host and Traefik another), under one of the allowed prefixes.
 */
function forwardAuthRefusal(address: string, allowed: readonly string[]): string | undefined {
  if (allowed.length === 0) return 'forwardAuth is not enabled here (TRAEFIK_FORWARD_AUTH_ALLOWED is empty)';
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    return 'is not a URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must be an http or https URL';
  if (url.username !== '' || url.password !== '') return 'must not carry credentials';
  if (url.href !== address) return `must be written in canonical form (${url.href.slice(0, 200)})`;
  if (!allowed.some((prefix) => underPrefix(address, prefix)))
    return `is not under an allowed prefix (${allowed.join(', ')})`;
  return undefined;
}

/** At a path segment's end: ".../api/verify" allows ".../api/verify" and ".../api/verify/x", not ".../api/verifyx". */
function underPrefix(address: string, prefix: string): boolean {
  if (!address.startsWith(prefix)) return false;
  if (prefix.endsWith('/') || address.length === prefix.length) return true;
  const next = address[prefix.length];
  return next === '/' || next === '?';
}

/** Parses TRAEFIK_FORWARD_AUTH_ALLOWED's prefixes into canonical http(s) URLs. */
export function forwardAuthPrefixes(values: readonly string[]): string[] {
  return values.map((value) => {
    // A value is named in errors without any credentials it holds.
    const named = JSON.stringify(value.replace(/\/\/[^/@]*@/, '//***@').slice(0, 200));
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new Error(`TRAEFIK_FORWARD_AUTH_ALLOWED: ${named} is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new Error(`TRAEFIK_FORWARD_AUTH_ALLOWED: ${named} is not an http(s) URL`);
    if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '')
      throw new Error(`TRAEFIK_FORWARD_AUTH_ALLOWED: ${named} must be a plain URL prefix`);
    // href always has a path ("https://auth.example.com" is "https://auth.example.com/"), so a
    // prefix can never end inside a host name and allow "https://auth.example.com.evil.net/".
    return url.href;
  });
}
