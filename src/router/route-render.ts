/**
 * One route's share of the Traefik configuration: its routers, service and middlewares, as the
 * JSON text it contributes to the published document. Pure but for where the bytes go: (validated
 * route, the swarm services of its deployment, topology, options) → output, written into an
 * arena. traefik-config.ts caches these per route; config-document.ts assembles the document.
 */
import type { SwarmService, SwarmTask, Topology } from '../discovery/index.js';
import type { ByteArena } from './byte-arena.js';
import type { HostPolicy } from './host-policy.js';
import {
  MIDDLEWARE_TYPES,
  NO_MIDDLEWARES,
  type MiddlewarePolicy,
  type MiddlewareType,
} from './middleware-validation.js';
import { DURATION_PATTERN, PATH_PATTERN } from './route-path.js';
import { NO_WARNINGS, type Route } from './route-validation.js';

export interface RenderOptions {
  readonly labelPrefix: string;
  readonly entryPoints: { readonly http: string; readonly https: string };
  readonly defaultCertResolver: string;
  /** Name of the overlay network Traefik shares with deployments; undefined: first non-ingress one. */
  readonly network: string | undefined;
  /** Base URL at which Traefik reaches this service (the 503 fallback). */
  readonly fallbackUrl: string;
  /** Reserved hosts and the sharing policy; default: localhost reserved, one deployment per host. */
  readonly hostPolicy?: HostPolicy;
  /** What a row's middlewares may do (forwardAuth's allowed addresses); default: no forwardAuth. */
  readonly middlewarePolicy?: MiddlewarePolicy;
  /** Entry points TCP and UDP routes may name (TRAEFIK_TCP_ENTRYPOINTS, TRAEFIK_UDP_ENTRYPOINTS); default none. */
  readonly streamEntryPoints?: { readonly tcp: readonly string[]; readonly udp: readonly string[] };
}

/** One key of a name map (http.routers, http.services, http.middlewares). */
export interface ConfigEntry {
  readonly name: string;
  /** The entry's line in the document, `   "name": {"key": value, ...}`, UTF-8. */
  readonly bytes: Buffer;
}

/** The three name maps of the document, in its order. */
export const MAP_KEYS = ['middlewares', 'routers', 'services'] as const;
export type MapKey = (typeof MAP_KEYS)[number];

/**
 * A route's share of the document: its middlewares (possibly none), its routers and its service,
 * one line each (`   "name": {...}`, see configEntry), UTF-8. The lines of a section are joined
 * by ",\n". The sections are first in a ByteArena chunk, then in the last document the route was
 * assembled into (see placeIn): no Buffer object per route, and a document where little changed
 * is copied from the previous one in a few long runs.
 *
 * Invariants, kept here and nowhere else:
 * - fields, setters and the arena layout all follow the document's order of maps (MAP_KEYS:
 *   middlewares, routers, services);
 * - once rendered, routers and services are never empty (a route has at least one router and one
 *   service); only middlewares may be;
 * - `bytes === NO_BYTES` exactly when the sections are not here (never rendered, or cleared).
 *
 * A slot that renderRoute fills, rather than a new object per rendering: the renderer's entry for
 * a row is its route's output (it extends this class), so that a cold render keeps one object per
 * row alive instead of two.
 */
export class RouteOutput {
  /** active: routed to running replicas; no-replicas: routed to the 503 fallback. */
  state: 'active' | 'no-replicas' = 'no-replicas';
  servers = 0;
  warnings: readonly string[] = NO_WARNINGS;
  private bytesHere: Buffer = NO_BYTES;
  /** Where each section starts in `bytes`, and its length in bytes, in MAP_KEYS order. */
  private middlewaresAt = 0;
  private middlewaresLength = 0;
  private routersAt = 0;
  private routersLength = 0;
  private servicesAt = 0;
  private servicesLength = 0;

  constructor(readonly name: string) {}

  /** The buffer the sections are in (an arena chunk or a document). */
  get bytes(): Buffer {
    return this.bytesHere;
  }

  at(key: MapKey): number {
    switch (key) {
      case 'middlewares':
        return this.middlewaresAt;
      case 'routers':
        return this.routersAt;
      case 'services':
        return this.servicesAt;
    }
  }

  length(key: MapKey): number {
    switch (key) {
      case 'middlewares':
        return this.middlewaresLength;
      case 'routers':
        return this.routersLength;
      case 'services':
        return this.servicesLength;
    }
  }

  /** The three sections' bytes in all. */
  get totalLength(): number {
    return this.middlewaresLength + this.routersLength + this.servicesLength;
  }

  /** Non-empty sections: services always; routers but for a split's other rows; middlewares when any. */
  get sectionCount(): number {
    return (this.middlewaresLength > 0 ? 1 : 0) + (this.routersLength > 0 ? 1 : 0) + 1;
  }

  /** Whether the route has a section in this map. */
  has(key: MapKey): boolean {
    return this.length(key) > 0;
  }

  /** The section's bytes, as a view (not a copy). */
  section(key: MapKey): Buffer {
    const at = this.at(key);
    return this.bytesHere.subarray(at, at + this.length(key));
  }

  /** Whether the sections are here: rendered, and not cleared since. */
  get hasSections(): boolean {
    return this.bytesHere !== NO_BYTES;
  }

  /** The sections as just rendered: consecutive in `bytes` from `start`, in MAP_KEYS order. */
  rendered(
    bytes: Buffer,
    start: number,
    middlewaresLength: number,
    routersLength: number,
    servicesLength: number,
  ): void {
    this.bytesHere = bytes;
    this.middlewaresAt = start;
    this.middlewaresLength = middlewaresLength;
    this.routersAt = start + middlewaresLength;
    this.routersLength = routersLength;
    this.servicesAt = this.routersAt + routersLength;
    this.servicesLength = servicesLength;
  }

  /** Points the route at a buffer that holds its sections (same lengths) at these offsets. */
  placeIn(bytes: Buffer, middlewaresAt: number, routersAt: number, servicesAt: number): void {
    this.bytesHere = bytes;
    this.middlewaresAt = middlewaresAt;
    this.routersAt = routersAt;
    this.servicesAt = servicesAt;
  }

  /** Forgets the sections: the buffer they were in (an arena chunk, an old document) may be freed. */
  clearSections(): void {
    this.bytesHere = NO_BYTES;
    this.middlewaresAt =
      this.middlewaresLength =
      this.routersAt =
      this.routersLength =
      this.servicesAt =
      this.servicesLength =
        0;
  }
}

const NO_BYTES = Buffer.alloc(0);

export const UNAVAILABLE_PATH = '/__edge/unavailable';
/** This service's error pages, `{status}` filled in by Traefik's errors middleware. */
export const ERROR_PAGE_PATH = '/__edge/error/';
/** The route's service of error pages: `<route>-errors`, next to its middleware of the same name. */
const ERRORS_SUFFIX = '-errors';
export const REDIRECT_MIDDLEWARE = 'edge-redirect-https';
export const UNAVAILABLE_MIDDLEWARE = 'edge-unavailable';

/** A route's middleware entry is named `<route>-<type, lowercase>`. */
const MIDDLEWARE_SUFFIX: ReadonlyMap<MiddlewareType, string> = new Map(
  MIDDLEWARE_TYPES.map((type) => [type, `-${type.toLowerCase()}`]),
);

/**
 * One line per entry, in YAML's flow style: JSON with a space after every ":" and "," outside
 * strings. Every YAML parser reads it (some reject `"key":value` without the space), Traefik's
 * HTTP provider reads it as JSON, a `grep` of a route name shows its whole router, and it is about
 * a quarter smaller than indented JSON, which matters when 100,000 routes are fsynced.
 */
export function configEntry(name: string, value: unknown): ConfigEntry {
  return { name, bytes: Buffer.from(`   ${q(name)}: ${flowJson(value)}`) };
}

/** Printable ASCII without `"` or `\`: its JSON form is the text in quotes. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what this excludes
const JSON_PLAIN = /^[^"\\\u0000-\u001f\u007f-\uffff]*$/;

/**
 * JSON.stringify of a string. Names, rules and URLs here are nearly always printable ASCII, for
 * which quoting is all JSON does; a regex test and a template are a third of JSON.stringify's cost.
 */
export function q(text: string): string {
  return JSON_PLAIN.test(text) ? `"${text}"` : JSON.stringify(text);
}

/**
 * JSON.stringify(value) with a space after each ":" and "," between tokens and object keys in
 * code-unit order (the document's canonical order), written directly (stringify-then-rescan cost
 * more than the rest of a cold render). Same JSON semantics for the values the router builds:
 * undefined properties are left out, undefined array items are null.
 */
export function flowJson(value: unknown): string {
  if (typeof value === 'string') return q(value);
  if (typeof value !== 'object' || value === null) return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i > 0 ? ', ' : '') + flowJson(value[i]);
    return `${out}]`;
  }
  const keys = sortedSmall(Object.keys(value));
  let out = '{';
  let first = true;
  for (const key of keys) {
    const item = (value as Record<string, unknown>)[key];
    if (item === undefined || typeof item === 'function') continue;
    out += `${first ? '' : ', '}${q(key)}: ${flowJson(item)}`;
    first = false;
  }
  return `${out}}`;
}

/**
 * Sorts in place, in code-unit order. Insertion sort for the few keys or replicas of a route:
 * Array.prototype.sort allocates more than the rest of the route's rendering.
 */
function sortedSmall(items: string[]): string[] {
  if (items.length > 16) return items.sort(compare);
  for (let i = 1; i < items.length; i++) {
    const item = items[i]!;
    let j = i;
    for (; j > 0 && items[j - 1]! > item; j--) items[j] = items[j - 1]!;
    items[j] = item;
  }
  return items;
}

/** The middlewares every document carries, whatever its routes. */
export const SHARED_MIDDLEWARES: readonly ConfigEntry[] = [
  configEntry(REDIRECT_MIDDLEWARE, { redirectScheme: { permanent: true, scheme: 'https' } }),
  configEntry(UNAVAILABLE_MIDDLEWARE, { replacePath: { path: UNAVAILABLE_PATH } }),
];

/**
 * Deterministic and "@"-free: a readable slug of the deployment plus 64 bits of a hash of the row
 * id. The hash need not be cryptographic (a SHA-256 per route was a tenth of a cold render): the
 * renderer refuses a second row whose name collides rather than let it replace the first.
 */
export function routeName(route: Pick<Route, 'id' | 'deploymentId'>): string {
  // Most deployment ids are already a slug: the two replacements are then skipped.
  const id = route.deploymentId;
  const slug = SLUG.test(id)
    ? id
    : id
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, '-')
        .replace(/^-+|-+$/g, '')
        .slice(0, 40) || 'route';
  const [a, b] = hash64Lanes(route.id);
  // Written as character codes: one flat string, where a template would leave a rope that every
  // later comparison flattens into a second copy (names are sorted and kept for every route).
  const codes = nameCodes;
  codes.length = slug.length + 17;
  for (let i = 0; i < slug.length; i++) codes[i] = slug.charCodeAt(i);
  codes[slug.length] = 0x2d; // -
  hexCodes(a, codes, slug.length + 1);
  hexCodes(b, codes, slug.length + 9);
  return String.fromCharCode.apply(null, codes);
}

/** What the replacements in routeName leave unchanged: lowercase alphanumeric runs joined by single hyphens, at most 40 characters. */
const SLUG = /^(?=.{1,40}$)[a-z0-9]+(-[a-z0-9]+)*$/;

/** Scratch space for routeName (synchronous, so never shared by two calls). */
const nameCodes: number[] = [];
const HEX_CODES = Array.from('0123456789abcdef', (digit) => digit.charCodeAt(0));

/** The 8 lowercase hex digits of a 32-bit unsigned value, as character codes, at `codes[at]` on. */
function hexCodes(value: number, codes: number[], at: number): void {
  for (let i = 0; i < 8; i++) codes[at + i] = HEX_CODES[(value >>> (28 - 4 * i)) & 15]!;
}

/** Two 32-bit FNV-1a lanes with different multipliers, each through murmur3's finaliser: 64 bits. */
function hash64Lanes(text: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x9e3779b9;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  return [fmix32(a ^ text.length), fmix32(b ^ Math.imul(text.length, 0x27d4eb2d))];
}

function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * What every route's rendering reads from the options, prepared once per renderer: the options'
 * strings as JSON text, and the names of the labels backendOptions reads.
 */
export class RenderContext {
  readonly quotedHttp: string;
  readonly quotedHttps: string;
  readonly quotedFallbackUrl: string;
  readonly labels: {
    readonly pass: string;
    readonly path: string;
    readonly interval: string;
    readonly timeout: string;
  };

  constructor(readonly options: RenderOptions) {
    this.quotedHttp = q(options.entryPoints.http);
    this.quotedHttps = q(options.entryPoints.https);
    this.quotedFallbackUrl = q(options.fallbackUrl);
    const prefix = options.labelPrefix;
    this.labels = {
      pass: `${prefix}.pass_host_header`,
      path: `${prefix}.healthcheck.path`,
      interval: `${prefix}.healthcheck.interval`,
      timeout: `${prefix}.healthcheck.timeout`,
    };
  }
}

/**
 * A row's part in the group of rows that share its host and path (see traefik-config.ts): the row
 * holding them, the leader, renders the router; weighted rows (a split) and shadows render their
 * service only (their middlewares, TLS and rule are the leader's). The router's service is the
 * leader's own, or the split's weighted service over every weighted row's; with shadows that have
 * a replica, a mirroring service around that.
 */
export type GroupRole =
  | { readonly leader: false }
  | {
      readonly leader: true;
      /** The split's rows, names in order, with their weights; empty when the host and path are not split. */
      readonly members: ReadonlyArray<{ readonly name: string; readonly weight: number }>;
      /** Any row of the split asks for sticky sessions: a client stays with the service it got. */
      readonly sticky: boolean;
      /** Another row of the split has a replica. */
      readonly othersLive: boolean;
      /** The shadows with a replica, names in order, and the share of requests each gets a copy of. */
      readonly mirrors: ReadonlyArray<{ readonly name: string; readonly percent: number }>;
    };

/**
 * The largest request body Traefik buffers to mirror: it holds a mirrored request's whole body in
 * memory, and by default without a bound. A larger request still reaches the route, unmirrored.
 */
export const MIRROR_MAX_BODY_BYTES = 1_048_576;

const SPLIT_SUFFIX = '-split';
const MIRROR_SUFFIX = '-mirror';

/**
 * Renders the route into `output` (named already). `services` are the swarm services of the
 * route's deployment, sorted by name, at least one.
 */
export function renderRoute(
  route: Route,
  output: RouteOutput,
  services: readonly SwarmService[],
  topology: Topology,
  context: RenderContext,
  arena: ByteArena,
  group?: GroupRole,
): void {
  const options = context.options;
  const name = output.name;
  // Copied only when this route adds a warning: most share the validated route's (empty) list.
  let warnings = route.warnings;
  const warn = (message: string) => {
    if (warnings === route.warnings) warnings = [...route.warnings];
    (warnings as string[]).push(message);
  };
  const quoted = q(name);
  const servers = serversFor(route, services, topology, options, warn);
  const backend = backendOptions(services, context.labels, warn);
  const split = group?.leader === true && group.members.length > 0 ? group : undefined;
  // A split's router goes on while any of its services has a replica (Traefik's weighted service
  // skips none itself: a service on the 503 fallback takes its share).
  const live = servers.length > 0 || split?.othersLive === true;
  if (group?.leader === false) {
    if (route.middlewares !== NO_MIDDLEWARES)
      warn(
        route.mirrorPercent === undefined
          ? "its middlewares are not used: a split uses its first row's"
          : "its middlewares are not used: a shadow gets copies of the mirrored route's requests, after that route's middlewares",
      );
    const { bytes, start, length } = arena.write(
      serviceLine(route, name, quoted, servers, context.quotedFallbackUrl, backend),
    );
    output.state = servers.length > 0 ? 'active' : 'no-replicas';
    output.servers = servers.length;
    output.warnings = warnings;
    output.rendered(bytes, start, 0, 0, length);
    return;
  }

  let middlewaresText = '';
  let routeMiddlewares = '';
  if (live) {
    if (route.middlewares !== NO_MIDDLEWARES) {
      // The router lists them in the route's order; the entries go in name order (the document's).
      const entries: Array<{ suffix: string; definition: Record<string, unknown> }> = [];
      for (const type of route.middlewareOrder) {
        const definition = middlewareDefinition(type, route, name, warn);
        if (definition === undefined) continue;
        const suffix = MIDDLEWARE_SUFFIX.get(type)!;
        routeMiddlewares += `${routeMiddlewares === '' ? '' : ', '}${suffixed(quoted, suffix)}`;
        entries.push({ suffix, definition });
      }
      entries.sort((a, b) => compare(a.suffix, b.suffix));
      for (const { suffix, definition } of entries)
        middlewaresText += `${middlewaresText === '' ? '' : ',\n'}   ${suffixed(quoted, suffix)}: ${flowJson(definition)}`;
    }
  } else {
    // Scaled to zero or not started yet: answer 503 from this service rather than fall through.
    routeMiddlewares = UNAVAILABLE_MIDDLEWARE_LIST;
  }

  const rule = ruleFor(route);
  const priority = priorityFor(route);
  const entryPoint = route.tls ? context.quotedHttps : context.quotedHttp;
  const served = split !== undefined ? suffixed(quoted, SPLIT_SUFFIX) : quoted;
  // Requests are copied to the shadows only while the route serves them (not its 503s).
  const mirrors = live && group?.leader === true && group.mirrors.length > 0 ? group.mirrors : undefined;
  const target = mirrors !== undefined ? suffixed(quoted, MIRROR_SUFFIX) : served;
  let routersText = routerLine(quoted, entryPoint, routeMiddlewares, priority, rule, route.tls?.certResolver, target);
  if (route.tls)
    routersText += `,\n${routerLine(suffixed(quoted, '-http'), context.quotedHttp, REDIRECT_MIDDLEWARE_LIST, priority, rule, undefined, target)}`;
  let serviceText = serviceLine(route, name, quoted, servers, context.quotedFallbackUrl, backend);
  // The errors middleware's pages come from this service, through a service of the route's own.
  if (live && route.middlewares.errors !== undefined)
    serviceText += `,\n   ${suffixed(quoted, ERRORS_SUFFIX)}: {"loadBalancer": {"servers": [{"url": ${context.quotedFallbackUrl}}]}}`;
  // In code-unit order of the names: <name>-errors, <name>-mirror, <name>-split.
  if (mirrors !== undefined) serviceText += `,\n   ${target}: ${mirrorService(served, mirrors)}`;
  if (split !== undefined) serviceText += `,\n   ${served}: ${splitService(name, split, route)}`;

  // One write for the three sections, in MAP_KEYS order; byte lengths are lengths when all is ASCII.
  const { bytes, start, length } = arena.write(middlewaresText + routersText + serviceText);
  const ascii = length === middlewaresText.length + routersText.length + serviceText.length;
  const middlewaresLength = ascii ? middlewaresText.length : Buffer.byteLength(middlewaresText);
  const routersLength = ascii ? routersText.length : Buffer.byteLength(routersText);
  output.state = live ? 'active' : 'no-replicas';
  output.servers = servers.length;
  output.warnings = warnings;
  output.rendered(bytes, start, middlewaresLength, routersLength, length - middlewaresLength - routersLength);
}

const REDIRECT_MIDDLEWARE_LIST = q(REDIRECT_MIDDLEWARE);
const UNAVAILABLE_MIDDLEWARE_LIST = q(UNAVAILABLE_MIDDLEWARE);

/**
 * The JSON text of `name + suffix`, from that of `name`: JSON escapes character by character, and
 * the suffixes here are plain ASCII. Route names are quoted once per route, not once per use.
 */
function suffixed(quotedName: string, suffix: string): string {
  return `${quotedName.slice(0, -1)}${suffix}"`;
}

/**
 * Routers and services are most of the document: written by hand, keys in code-unit order, the
 * same text configEntry would produce (a unit test holds the two together).
 */
/** Arguments named `quoted...` and `rule` are JSON text already. */
function routerLine(
  quotedName: string,
  quotedEntryPoint: string,
  quotedMiddlewares: string,
  priority: number,
  rule: string,
  certResolver: string | undefined,
  quotedService: string,
): string {
  let text = `   ${quotedName}: {"entryPoints": [${quotedEntryPoint}]`;
  if (quotedMiddlewares !== '') text += `, "middlewares": [${quotedMiddlewares}]`;
  text += `, "priority": ${priority}, "rule": ${rule}, "service": ${quotedService}`;
  if (certResolver !== undefined) text += `, "tls": {"certResolver": ${q(certResolver)}}`;
  return `${text}}`;
}

/** The mirroring service around the route's service (or split): copies to each shadow, bodies bounded. */
function mirrorService(quotedService: string, mirrors: Extract<GroupRole, { leader: true }>['mirrors']): string {
  let text = `{"mirroring": {"maxBodySize": ${MIRROR_MAX_BODY_BYTES}, "mirrors": [`;
  mirrors.forEach((mirror, i) => {
    text += `${i > 0 ? ', ' : ''}{"name": ${q(mirror.name)}, "percent": ${mirror.percent}}`;
  });
  return `${text}], "service": ${quotedService}}}`;
}

/** The weighted service of a split, over its rows' services (names in order, as the document's). */
function splitService(name: string, split: Extract<GroupRole, { leader: true }>, route: Route): string {
  let text = '{"weighted": {"services": [';
  split.members.forEach((member, i) => {
    text += `${i > 0 ? ', ' : ''}{"name": ${q(member.name)}, "weight": ${member.weight}}`;
  });
  text += ']';
  if (split.sticky) text += stickyCookie(`${cookieName(name)}_split`, route);
  return `${text}}}`;
}

/** The cookie a route's sticky sessions use: one per route name, a valid cookie name. */
function cookieName(routeName: string): string {
  return `edge_${routeName.replace(/-/g, '_').slice(-24)}`;
}

/** `, "sticky": …` of a load balancer or weighted service: secure when the route is TLS. */
function stickyCookie(cookie: string, route: Route): string {
  return `, "sticky": {"cookie": {"httpOnly": true, "name": ${q(cookie)}, "sameSite": "lax", "secure": ${route.tls !== undefined}}}`;
}

/** No servers: the one server is the 503 fallback. */
function serviceLine(
  route: Route,
  name: string,
  quotedName: string,
  servers: readonly string[],
  quotedFallback: string,
  backend: BackendOptions,
): string {
  const live = servers.length > 0;
  let text = `   ${quotedName}: {"loadBalancer": {`;
  // The health check would mark the 503 fallback down; it only applies to real replicas.
  if (live && backend.healthCheck) text += `"healthCheck": ${flowJson(backend.healthCheck)}, `;
  if (backend.passHostHeader !== undefined) text += `"passHostHeader": ${backend.passHostHeader}, `;
  text += '"servers": [';
  if (!live) text += `{"url": ${quotedFallback}}`;
  for (let i = 0; i < servers.length; i++) text += `${i > 0 ? ', ' : ''}{"url": ${q(servers[i]!)}}`;
  text += ']';
  if (route.sticky) text += stickyCookie(cookieName(name), route);
  // wrr is Traefik's default: left out, so the output also suits Traefik versions before p2c.
  if (route.strategy !== 'wrr') text += `, "strategy": ${q(route.strategy)}`;
  return `${text}}}`;
}

/**
 * The rule, as JSON text. Validated hosts are [a-z0-9.-] and paths printable ASCII without quotes
 * or backslashes, so a plain host rule needs only its quotes; a wildcard's regexp has backslashes.
 */
function ruleFor(route: Route): string {
  const path = route.pathPrefix ? ` && PathPrefix(\`${route.pathPrefix}\`)` : '';
  if (route.wildcard) return q(`HostRegexp(\`${wildcardPattern(route.host)}\`)${path}`);
  return `"Host(\`${route.host}\`)${path}"`;
}

/** The regexp of `*.host`: one label, any, under the host (HostRegexp, HostSNIRegexp). */
export function wildcardPattern(host: string): string {
  return `^[a-z0-9-]+\\.${host.replaceAll('.', '\\.')}$`;
}

/** Exact hosts beat wildcards, narrower wildcards beat wider ones, longer paths beat shorter. */
export function priorityFor(route: Route): number {
  const hostRank = route.wildcard ? route.host.split('.').length : 1000;
  return hostRank * 10_000 + route.pathPrefix.length;
}

/**
 * The running replicas, sorted, without duplicates: as URLs of the route's protocol (HTTP), or as
 * `ip:port` addresses (TCP, UDP).
 */
export function serversFor(
  route: Route,
  services: readonly SwarmService[],
  topology: Topology,
  options: Pick<RenderOptions, 'network'>,
  warn: (message: string) => void,
  form: 'url' | 'address' = 'url',
): string[] {
  const urls: string[] = [];
  for (const service of services) {
    for (const task of topology.tasks.get(service.id) ?? []) {
      if (task.state !== 'running') continue;
      const address = taskAddress(task, service, route.targetPort, topology, options.network);
      if (address === undefined) {
        warn(`task ${task.id} of ${service.name} has no address on network ${options.network ?? '(any)'}`);
        continue;
      }
      urls.push(form === 'url' ? `${route.protocol}://${address}` : address);
    }
  }
  if (urls.length < 2) return urls;
  sortedSmall(urls);
  // Duplicates removed in place: no second array per route.
  let kept = 1;
  for (let i = 1; i < urls.length; i++) if (urls[i] !== urls[kept - 1]) urls[kept++] = urls[i]!;
  if (kept < urls.length) urls.length = kept;
  return urls;
}

export function taskAddress(
  task: SwarmTask,
  service: SwarmService,
  port: number,
  topology: Topology,
  network: string | undefined,
): string | undefined {
  // Loops rather than find(): this runs for every replica of every route in a cold render.
  for (const address of task.addresses) {
    if (network === undefined ? address.networkName !== 'ingress' : address.networkName === network)
      return hostPort(address.ip, port);
  }
  const node = topology.nodes.get(task.nodeId);
  if (!node?.address) return undefined;
  for (const published of service.ports) {
    if (published.mode === 'host' && published.target === port) return hostPort(node.address, published.published);
  }
  // Host networking: the task listens on its node's address.
  if (service.hostNetwork || task.addresses.length === 0) return hostPort(node.address, port);
  return undefined;
}

function hostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

interface BackendOptions {
  readonly passHostHeader: boolean | undefined;
  readonly healthCheck: { interval?: string; path: string; timeout?: string } | undefined;
}

/** Backend settings from the deployment's service labels; bad values are ignored with a warning. */
function backendOptions(
  services: readonly SwarmService[],
  keys: RenderContext['labels'],
  warn: (message: string) => void,
): BackendOptions {
  const labels = services[0]?.labels ?? {};
  let passHostHeader: boolean | undefined;
  const pass = labels[keys.pass];
  if (pass === 'true' || pass === 'false') passHostHeader = pass === 'true';
  else if (pass !== undefined) warn(`label ${keys.pass} must be true or false`);

  let healthCheck: BackendOptions['healthCheck'];
  const path = labels[keys.path];
  if (path !== undefined) {
    const interval = labels[keys.interval];
    const timeout = labels[keys.timeout];
    if (!PATH_PATTERN.test(path) || path.length > 256) warn(`label ${keys.path} is not a valid path`);
    else if (interval !== undefined && !DURATION_PATTERN.test(interval))
      warn(`label ${keys.interval} is not a duration`);
    else if (timeout !== undefined && !DURATION_PATTERN.test(timeout)) warn(`label ${keys.timeout} is not a duration`);
    else healthCheck = { ...(interval ? { interval } : {}), path, ...(timeout ? { timeout } : {}) };
  }
  return { passHostHeader, healthCheck };
}

function middlewareDefinition(
  type: MiddlewareType,
  route: Route,
  name: string,
  warn: (message: string) => void,
): Record<string, unknown> | undefined {
  const m = route.middlewares;
  switch (type) {
    case 'rateLimit':
      return m.rateLimit && { rateLimit: m.rateLimit };
    case 'compress':
      return m.compress && { compress: m.compress === true ? {} : m.compress };
    case 'headers':
      return m.headers && { headers: m.headers };
    case 'redirectScheme':
      return m.redirectScheme && { redirectScheme: m.redirectScheme };
    case 'ipAllowList':
      return m.ipAllowList && { ipAllowList: { sourceRange: m.ipAllowList.sourceRange } };
    case 'retry':
      return m.retry && { retry: m.retry };
    case 'basicAuth':
      return m.basicAuth && { basicAuth: m.basicAuth };
    case 'forwardAuth':
      return m.forwardAuth && { forwardAuth: m.forwardAuth };
    case 'inFlightReq':
      return m.inFlightReq && { inFlightReq: m.inFlightReq };
    case 'buffering':
      return m.buffering && { buffering: m.buffering };
    case 'circuitBreaker':
      return m.circuitBreaker && { circuitBreaker: m.circuitBreaker };
    case 'errors':
      return (
        m.errors && {
          errors: {
            status: m.errors === true ? ['500-599'] : m.errors.status,
            service: `${name}${ERRORS_SUFFIX}`,
            query: `${ERROR_PAGE_PATH}{status}`,
          },
        }
      );
    case 'stripPrefix': {
      if (m.stripPrefix === undefined) return undefined;
      if (m.stripPrefix !== true) return { stripPrefix: { prefixes: m.stripPrefix.prefixes } };
      if (route.pathPrefix === '') {
        warn('stripPrefix: true has no path prefix to strip');
        return undefined;
      }
      return { stripPrefix: { prefixes: [route.pathPrefix] } };
    }
  }
}

/** Code-unit order, independent of locale: the output must not depend on the machine. */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
