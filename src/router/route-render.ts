/**
 * One route's share of the Traefik configuration: its routers, service and middlewares, each
 * with the JSON text it contributes to the published document. Pure: (validated route, the swarm
 * services of its deployment, topology, options) → output. traefik-config.ts caches these per
 * route and assembles the document from them.
 */
import { createHash } from 'node:crypto';
import type { SwarmService, SwarmTask, Topology } from '../discovery/index.js';
import { DURATION_PATTERN, PATH_PATTERN, type Middlewares, type Route } from './route-validation.js';

export interface RenderOptions {
  readonly labelPrefix: string;
  readonly entryPoints: { readonly http: string; readonly https: string };
  readonly defaultCertResolver: string;
  /** Name of the overlay network Traefik shares with deployments; undefined: first non-ingress one. */
  readonly network: string | undefined;
  /** Base URL at which Traefik reaches this service (the 503 fallback). */
  readonly fallbackUrl: string;
}

export interface Server {
  readonly url: string;
}

/** One key of a name map (http.routers, http.services, http.middlewares). */
export interface ConfigEntry {
  readonly name: string;
  /** The entry's line in the document, `   "name": {"key": value, ...}`, UTF-8. */
  readonly bytes: Buffer;
}

export interface RouteOutput {
  readonly name: string;
  /** active: routed to running replicas; no-replicas: routed to the 503 fallback. */
  readonly state: 'active' | 'no-replicas';
  readonly servers: number;
  readonly warnings: readonly string[];
  readonly routers: readonly ConfigEntry[];
  readonly services: readonly ConfigEntry[];
  readonly middlewares: readonly ConfigEntry[];
}

export const UNAVAILABLE_PATH = '/__edge/unavailable';
export const REDIRECT_MIDDLEWARE = 'edge-redirect-https';
export const UNAVAILABLE_MIDDLEWARE = 'edge-unavailable';

/** Order in which a route's middlewares run: cheap refusals first, then rewriting, then encoding. */
const MIDDLEWARE_ORDER: ReadonlyArray<keyof Middlewares> = [
  'ipAllowList',
  'rateLimit',
  'redirectScheme',
  'stripPrefix',
  'headers',
  'retry',
  'compress',
];

/**
 * One line per entry, in YAML's flow style: JSON with a space after every ":" and "," outside
 * strings. Every YAML parser reads it (some reject `"key":value` without the space), Traefik's
 * HTTP provider reads it as JSON, a `grep` of a route name shows its whole router, and it is about
 * a quarter smaller than indented JSON, which matters when 100,000 routes are fsynced.
 */
export function configEntry(name: string, value: unknown): ConfigEntry {
  return { name, bytes: Buffer.from(`   ${JSON.stringify(name)}: ${flowJson(value)}`) };
}

/** JSON.stringify(value) with a space after each ":" and "," that is not inside a string. */
export function flowJson(value: unknown): string {
  const compact = JSON.stringify(value);
  let out = '';
  let last = 0;
  let inString = false;
  for (let i = 0; i < compact.length; i++) {
    const c = compact.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i += 1; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x3a || c === 0x2c) {
      out += `${compact.slice(last, i + 1)} `;
      last = i + 1;
    }
  }
  return out + compact.slice(last);
}

/** The middlewares every document carries, whatever its routes. */
export const SHARED_MIDDLEWARES: readonly ConfigEntry[] = [
  configEntry(REDIRECT_MIDDLEWARE, { redirectScheme: { permanent: true, scheme: 'https' } }),
  configEntry(UNAVAILABLE_MIDDLEWARE, { replacePath: { path: UNAVAILABLE_PATH } }),
];

/** Deterministic, "@"-free, and unique per row: a readable slug plus a hash of the row id. */
export function routeName(route: Pick<Route, 'id' | 'deploymentId'>): string {
  const slug = route.deploymentId.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'route';
  const hash = createHash('sha256').update(route.id).digest('hex').slice(0, 12);
  return `${slug}-${hash}`;
}

/** `services` are the swarm services of the route's deployment, sorted by name, at least one. */
export function renderRoute(route: Route, name: string, services: readonly SwarmService[], topology: Topology, options: RenderOptions): RouteOutput {
  const warnings = [...route.warnings];
  const servers = serversFor(route, services, topology, options, warnings);
  const backend = backendOptions(services, options.labelPrefix, warnings);
  const live = servers.length > 0;

  const middlewares: ConfigEntry[] = [];
  const routeMiddlewares: string[] = [];
  if (live) {
    for (const type of MIDDLEWARE_ORDER) {
      const definition = middlewareDefinition(type, route, warnings);
      if (definition === undefined) continue;
      const middlewareName = `${name}-${type.toLowerCase()}`;
      middlewares.push(configEntry(middlewareName, definition));
      routeMiddlewares.push(middlewareName);
    }
  } else {
    // Scaled to zero or not started yet: answer 503 from this service rather than fall through.
    routeMiddlewares.push(UNAVAILABLE_MIDDLEWARE);
  }

  const rule = ruleFor(route);
  const priority = priorityFor(route);
  const routers = [
    configEntry(name, {
      entryPoints: [route.tls ? options.entryPoints.https : options.entryPoints.http],
      ...(routeMiddlewares.length > 0 ? { middlewares: routeMiddlewares } : {}),
      priority,
      rule,
      service: name,
      ...(route.tls ? { tls: { certResolver: route.tls.certResolver } } : {}),
    }),
  ];
  if (route.tls) {
    routers.push(configEntry(`${name}-http`, { entryPoints: [options.entryPoints.http], middlewares: [REDIRECT_MIDDLEWARE], priority, rule, service: name }));
  }
  const loadBalancer = loadBalancerFor(route, name, live ? servers : [{ url: options.fallbackUrl }], backend, live);
  return {
    name,
    state: live ? 'active' : 'no-replicas',
    servers: servers.length,
    warnings,
    routers,
    services: [configEntry(name, { loadBalancer })],
    middlewares: middlewares.sort((a, b) => compare(a.name, b.name)),
  };
}

function ruleFor(route: Route): string {
  const host = route.wildcard
    ? `HostRegexp(\`^[a-z0-9-]+\\.${route.host.replaceAll('.', '\\.')}$\`)`
    : `Host(\`${route.host}\`)`;
  return route.pathPrefix ? `${host} && PathPrefix(\`${route.pathPrefix}\`)` : host;
}

/** Exact hosts beat wildcards, narrower wildcards beat wider ones, longer paths beat shorter. */
function priorityFor(route: Route): number {
  const hostRank = route.wildcard ? route.host.split('.').length : 1000;
  return hostRank * 10_000 + route.pathPrefix.length;
}

function serversFor(route: Route, services: readonly SwarmService[], topology: Topology, options: RenderOptions, warnings: string[]): Server[] {
  const urls = new Set<string>();
  for (const service of services) {
    for (const task of topology.tasks.get(service.id) ?? []) {
      if (task.state !== 'running') continue;
      const address = taskAddress(task, service, route.targetPort, topology, options.network);
      if (address === undefined) {
        warnings.push(`task ${task.id} of ${service.name} has no address on network ${options.network ?? '(any)'}`);
        continue;
      }
      urls.add(`${route.protocol}://${address}`);
    }
  }
  return [...urls].sort(compare).map((url) => ({ url }));
}

function taskAddress(task: SwarmTask, service: SwarmService, port: number, topology: Topology, network: string | undefined): string | undefined {
  const onNetwork = network === undefined
    ? task.addresses.find((a) => a.networkName !== 'ingress')
    : task.addresses.find((a) => a.networkName === network);
  if (onNetwork) return hostPort(onNetwork.ip, port);
  const node = topology.nodes.get(task.nodeId);
  if (!node?.address) return undefined;
  const published = service.ports.find((p) => p.mode === 'host' && p.target === port);
  if (published) return hostPort(node.address, published.published);
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
function backendOptions(services: readonly SwarmService[], prefix: string, warnings: string[]): BackendOptions {
  const labels = services[0]?.labels ?? {};
  let passHostHeader: boolean | undefined;
  const pass = labels[`${prefix}.pass_host_header`];
  if (pass === 'true' || pass === 'false') passHostHeader = pass === 'true';
  else if (pass !== undefined) warnings.push(`label ${prefix}.pass_host_header must be true or false`);

  let healthCheck: BackendOptions['healthCheck'];
  const path = labels[`${prefix}.healthcheck.path`];
  if (path !== undefined) {
    const interval = labels[`${prefix}.healthcheck.interval`];
    const timeout = labels[`${prefix}.healthcheck.timeout`];
    if (!PATH_PATTERN.test(path) || path.length > 256) warnings.push(`label ${prefix}.healthcheck.path is not a valid path`);
    else if (interval !== undefined && !DURATION_PATTERN.test(interval)) warnings.push(`label ${prefix}.healthcheck.interval is not a duration`);
    else if (timeout !== undefined && !DURATION_PATTERN.test(timeout)) warnings.push(`label ${prefix}.healthcheck.timeout is not a duration`);
    else healthCheck = { ...(interval ? { interval } : {}), path, ...(timeout ? { timeout } : {}) };
  }
  return { passHostHeader, healthCheck };
}

function loadBalancerFor(route: Route, name: string, servers: readonly Server[], backend: BackendOptions, live: boolean): Record<string, unknown> {
  return {
    // The health check would mark the 503 fallback down; it only applies to real replicas.
    ...(live && backend.healthCheck ? { healthCheck: backend.healthCheck } : {}),
    ...(backend.passHostHeader !== undefined ? { passHostHeader: backend.passHostHeader } : {}),
    servers,
    ...(route.sticky
      ? { sticky: { cookie: { httpOnly: true, name: `edge_${name.replace(/-/g, '_').slice(-24)}`, sameSite: 'lax', secure: route.tls !== undefined } } }
      : {}),
    // wrr is Traefik's default: left out, so the output also suits Traefik versions before p2c.
    ...(route.strategy !== 'wrr' ? { strategy: route.strategy } : {}),
  };
}

function middlewareDefinition(type: keyof Middlewares, route: Route, warnings: string[]): Record<string, unknown> | undefined {
  const m = route.middlewares;
  switch (type) {
    case 'rateLimit':
      return m.rateLimit && { rateLimit: sortKeys(m.rateLimit) };
    case 'compress':
      return m.compress && { compress: m.compress === true ? {} : sortKeys(m.compress) };
    case 'headers':
      return m.headers && { headers: sortKeys(m.headers) };
    case 'redirectScheme':
      return m.redirectScheme && { redirectScheme: sortKeys(m.redirectScheme) };
    case 'ipAllowList':
      return m.ipAllowList && { ipAllowList: { sourceRange: m.ipAllowList.sourceRange } };
    case 'retry':
      return m.retry && { retry: sortKeys(m.retry) };
    case 'stripPrefix': {
      if (m.stripPrefix === undefined) return undefined;
      if (m.stripPrefix !== true) return { stripPrefix: { prefixes: m.stripPrefix.prefixes } };
      if (route.pathPrefix === '') {
        warnings.push('stripPrefix: true has no path prefix to strip');
        return undefined;
      }
      return { stripPrefix: { prefixes: [route.pathPrefix] } };
    }
  }
}

/** Recursively sorts the keys of validated, JSON-shaped middleware options. */
function sortKeys<T>(value: T): T {
  if (Array.isArray(value)) return value.map(sortKeys) as T;
  if (value === null || typeof value !== 'object') return value;
  const result: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort(compare)) result[key] = sortKeys((value as Record<string, unknown>)[key]);
  return result as T;
}

/** Code-unit order, independent of locale: the output must not depend on the machine. */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
