/**
 * The heart of the router, a pure function: routing rows + live topology → Traefik v3 dynamic
 * configuration, plus the status of every row. Same input, byte-identical output: every map is
 * built with its keys in sorted order (see the canonical-order test).
 *
 * Traefik rules this respects (see DOMAIN-FACTS.md): one value per matcher; HostRegexp for
 * wildcards; names without "@"; no empty maps; a deployment with no running replica keeps its
 * router and answers 503 through a fallback server (this service) instead of falling through.
 */
import { createHash } from 'node:crypto';
import type { SwarmService, SwarmTask, Topology } from '../discovery/index.js';
import { DURATION_PATTERN, PATH_PATTERN, validateRow, type Middlewares, type Route } from './route-validation.js';
import type { RoutingRow } from './routing-table.js';

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

export interface DynamicConfig {
  readonly http: {
    readonly middlewares: Record<string, unknown>;
    readonly routers?: Record<string, unknown>;
    readonly services?: Record<string, unknown>;
  };
}

/**
 * active: routed to running replicas. no-replicas: the service exists but runs nothing (scaled to
 * zero, starting, crashed): routed to a 503. no-service: no swarm service carries the deployment
 * (not created yet, or removed): not published. rejected: the row is invalid.
 */
export type RouteState = 'active' | 'no-replicas' | 'no-service' | 'rejected';

export interface RouteStatus {
  readonly id: string;
  readonly deploymentId: string;
  readonly domain: string;
  readonly pathPrefix: string;
  readonly state: RouteState;
  readonly router?: string;
  readonly servers: number;
  readonly field?: string;
  readonly reason?: string;
  readonly warnings: readonly string[];
}

export interface RenderResult {
  readonly config: DynamicConfig;
  readonly statuses: readonly RouteStatus[];
}

export const UNAVAILABLE_PATH = '/__edge/unavailable';
const REDIRECT_MIDDLEWARE = 'edge-redirect-https';
const UNAVAILABLE_MIDDLEWARE = 'edge-unavailable';

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

export function renderTraefikConfig(rows: readonly RoutingRow[], topology: Topology, options: RenderOptions): RenderResult {
  const statuses: RouteStatus[] = [];
  const routers: Array<[string, unknown]> = [];
  const services: Array<[string, unknown]> = [];
  const middlewares: Array<[string, unknown]> = [
    [REDIRECT_MIDDLEWARE, { redirectScheme: { permanent: true, scheme: 'https' } }],
    [UNAVAILABLE_MIDDLEWARE, { replacePath: { path: UNAVAILABLE_PATH } }],
  ];
  const servicesByDeployment = indexServices(topology);
  const claimed = new Map<string, string>();

  for (const row of [...rows].sort((a, b) => compare(a.id, b.id))) {
    const base = {
      id: row.id,
      deploymentId: typeof row.deployment_id === 'string' ? row.deployment_id.slice(0, 128) : '',
      domain: typeof row.domain === 'string' ? row.domain.slice(0, 300) : '',
      pathPrefix: typeof row.path_prefix === 'string' ? row.path_prefix.slice(0, 300) : '',
    };
    const validation = validateRow(row, { certResolver: options.defaultCertResolver });
    if (!validation.ok) {
      statuses.push({ ...base, state: 'rejected', servers: 0, field: validation.field, reason: validation.reason, warnings: [] });
      continue;
    }
    const route = validation.route;
    const matchKey = `${route.wildcard ? '*.' : ''}${route.host}|${route.pathPrefix}`;
    const owner = claimed.get(matchKey);
    if (owner !== undefined) {
      statuses.push({ ...base, state: 'rejected', servers: 0, field: 'domain', reason: `same domain and path as route ${owner}`, warnings: [] });
      continue;
    }
    claimed.set(matchKey, route.id);

    const warnings = [...route.warnings];
    const name = routeName(route);
    const matching = servicesByDeployment.get(`${route.deploymentId}\u0000${route.serviceName}`) ?? [];
    if (matching.length === 0) {
      statuses.push({ ...base, state: 'no-service', servers: 0, warnings });
      continue;
    }
    const servers = serversFor(route, matching, topology, options, warnings);
    const backend = backendOptions(matching, options.labelPrefix, warnings);
    const hasReplicas = servers.length > 0;

    const routeMiddlewares: string[] = [];
    if (hasReplicas) {
      for (const type of MIDDLEWARE_ORDER) {
        const definition = middlewareDefinition(type, route, warnings);
        if (definition === undefined) continue;
        const middlewareName = `${name}-${type.toLowerCase()}`;
        middlewares.push([middlewareName, definition]);
        routeMiddlewares.push(middlewareName);
      }
    } else {
      // Scaled to zero or not started yet: answer 503 from this service rather than fall through.
      routeMiddlewares.push(UNAVAILABLE_MIDDLEWARE);
    }

    const rule = ruleFor(route);
    const priority = priorityFor(route);
    routers.push([
      name,
      {
        entryPoints: [route.tls ? options.entryPoints.https : options.entryPoints.http],
        ...(routeMiddlewares.length > 0 ? { middlewares: routeMiddlewares } : {}),
        priority,
        rule,
        service: name,
        ...(route.tls ? { tls: { certResolver: route.tls.certResolver } } : {}),
      },
    ]);
    if (route.tls) {
      routers.push([
        `${name}-http`,
        { entryPoints: [options.entryPoints.http], middlewares: [REDIRECT_MIDDLEWARE], priority, rule, service: name },
      ]);
    }
    services.push([name, { loadBalancer: loadBalancerFor(route, name, hasReplicas ? servers : [{ url: options.fallbackUrl }], backend, hasReplicas) }]);
    statuses.push({ ...base, state: hasReplicas ? 'active' : 'no-replicas', router: name, servers: servers.length, warnings });
  }

  const http: { middlewares: Record<string, unknown>; routers?: Record<string, unknown>; services?: Record<string, unknown> } = {
    middlewares: sortedObject(middlewares),
  };
  if (routers.length > 0) http.routers = sortedObject(routers);
  if (services.length > 0) http.services = sortedObject(services);
  return { config: { http }, statuses };
}

/** Deterministic, "@"-free, and unique per row: a readable slug plus a hash of the row id. */
export function routeName(route: Pick<Route, 'id' | 'deploymentId'>): string {
  const slug = route.deploymentId.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'route';
  const hash = createHash('sha256').update(route.id).digest('hex').slice(0, 12);
  return `${slug}-${hash}`;
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

function indexServices(topology: Topology): Map<string, SwarmService[]> {
  const index = new Map<string, SwarmService[]>();
  for (const service of topology.services.values()) {
    const key = `${service.deploymentId}\u0000${service.serviceName}`;
    const list = index.get(key) ?? [];
    list.push(service);
    index.set(key, list);
  }
  for (const list of index.values()) list.sort((a, b) => compare(a.name, b.name));
  return index;
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

function sortedObject(entries: Array<[string, unknown]>): Record<string, unknown> {
  entries.sort(([a], [b]) => compare(a, b));
  const result: Record<string, unknown> = {};
  for (const [key, value] of entries) result[key] = value;
  return result;
}

/** Recursively sorts the keys of validated, JSON-shaped middleware options. */
function sortKeys<T>(value: T): T {
  if (Array.isArray(value)) return value.map(sortKeys) as T;
  if (value === null || typeof value !== 'object') return value;
  return sortedObject(Object.entries(value).map(([k, v]) => [k, sortKeys(v)])) as T;
}

/** Code-unit order, independent of locale: the output must not depend on the machine. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
