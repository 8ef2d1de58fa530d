/**
 * The heart of the router: routing rows + live topology → the Traefik v3 dynamic configuration
 * document, plus the status of every row. Same input, byte-identical output: every name map is
 * emitted in code-unit key order (see the canonical-order test).
 *
 * Traefik rules this respects (see DOMAIN-FACTS.md): one value per matcher; HostRegexp for
 * wildcards; names without "@"; no empty maps; a deployment with no running replica keeps its
 * router and answers 503 through a fallback server (this service) instead of falling through.
 *
 * Publishing is incremental. A TraefikRenderer remembers each row's validation (by row object:
 * RoutingTable hands out the same object while a row is unchanged) and each route's rendered
 * entries, JSON text included (by validated route and a fingerprint of its deployment's tasks).
 * A change re-renders only the routes it touches; the document is then assembled from cached
 * bytes: JSON (hence YAML), one line per router, service and middleware (see configEntry).
 */
import type { SwarmService, SwarmTask, Topology } from '../discovery/index.js';
import {
  compare,
  renderRoute,
  routeName,
  SHARED_MIDDLEWARES,
  type ConfigEntry,
  type RenderOptions,
  type RouteOutput,
} from './route-render.js';
import { validateRow, type Route, type Validation } from './route-validation.js';
import type { RoutingRow } from './routing-table.js';

export { routeName, UNAVAILABLE_PATH } from './route-render.js';
export type { RenderOptions } from './route-render.js';

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
  /** The document, UTF-8 JSON (which is also YAML, for the file provider). */
  readonly body: Buffer;
  readonly statuses: readonly RouteStatus[];
  /** The same document as an object, parsed on demand (the Redis publisher walks it). */
  readonly config: () => DynamicConfig;
  /** Routes rendered afresh by this call rather than taken from the cache. */
  readonly rendered: number;
}

/**
 * What a row yields, kept per row object (RoutingTable hands out the same object while a row is
 * unchanged), with the renderer's state for that row: so that a publish where little changed
 * reads fields instead of looking 100,000 keys up in maps.
 */
interface RowEntry {
  readonly validation: Validation;
  /** The row's identifying fields, as strings of bounded length, for statuses and logs. */
  readonly base: Pick<RouteStatus, 'id' | 'deploymentId' | 'domain' | 'pathPrefix'>;
  /** Host and path: two rows may not claim the same. */
  readonly matchKey: string;
  /** The swarm services that serve the route: the deployment's, of this service name (see indexServices). */
  readonly deploymentId: string;
  readonly serviceName: string;
  readonly name: string;
  /** The last render whose rows included this one. */
  seen: number;
  /** Id of the first row by id that claims the same host and path; this row's own id if it is that row. */
  owner: string;
  /** The deployment's services, as of services index `indexVersion`. */
  services: SwarmService[] | undefined;
  indexVersion: number;
  /** The route rendered from this row, and what it was rendered from. */
  route: RouteEntry | undefined;
}

interface RouteEntry {
  /** What the output was rendered from: compared by identity first, then by fingerprint. */
  services: readonly SwarmService[];
  tasks: ReadonlyArray<readonly SwarmTask[] | undefined>;
  nodes: Topology['nodes'];
  readonly output: RouteOutput;
  readonly status: RouteStatus;
}

export class TraefikRenderer {
  private readonly rowCache = new WeakMap<RoutingRow, RowEntry>();
  private generation = 0;
  /** The valid rows of the last render, and the rows claiming each host and path, in id order. */
  private lastRows: readonly RowEntry[] = [];
  private readonly claims = new Map<string, RowEntry[]>();
  private readonly fingerprints = new WeakMap<object, string>();
  private lastServices: readonly SwarmService[] = [];
  private lastIndex: ServicesIndex = new Map();
  private indexVersion = 0;
  /** Route names in row order at the last render, and their order by name: reused while the same. */
  private lastNames: readonly string[] = [];
  private lastOrder: readonly number[] = [];
  private lastCollisions: ReadonlyArray<readonly [loser: number, winner: number]> = [];

  /** `nameOf` is routeName; tests pass another to force a collision. */
  constructor(
    private readonly options: RenderOptions,
    private readonly nameOf: (route: Pick<Route, 'id' | 'deploymentId'>) => string = routeName,
  ) {}

  render(rows: readonly RoutingRow[], topology: Topology): RenderResult {
    const generation = ++this.generation;
    const entries: RowEntry[] = [];
    const valid: RowEntry[] = [];
    const added: RowEntry[] = [];
    for (const row of sortedById(rows)) {
      const entry = this.rowEntry(row);
      // The same row object twice (ids are unique in the table): counted once.
      if (entry.seen === generation) continue;
      if (entry.validation.ok) {
        if (entry.seen !== generation - 1) added.push(entry);
        valid.push(entry);
      }
      entry.seen = generation;
      entries.push(entry);
    }
    this.updateClaims(valid, added, generation);

    const statuses: RouteStatus[] = [];
    const outputs: RouteOutput[] = [];
    /** Per output: its row, and the index of its status. */
    const outputRows: RowEntry[] = [];
    const outputStatuses: number[] = [];
    const servicesByDeployment = this.servicesIndex(topology);
    let rendered = 0;

    for (const entry of entries) {
      const { validation, base } = entry;
      if (!validation.ok) {
        statuses.push(routeStatus(base, 'rejected', { field: validation.field, reason: validation.reason }));
        continue;
      }
      if (entry.owner !== base.id) {
        statuses.push(routeStatus(base, 'rejected', { field: 'domain', reason: `same domain and path as route ${entry.owner}` }));
        continue;
      }
      const route = validation.route;
      if (entry.indexVersion !== this.indexVersion) {
        entry.services = servicesByDeployment.get(entry.deploymentId)?.get(entry.serviceName);
        entry.indexVersion = this.indexVersion;
      }
      const services = entry.services;
      if (services === undefined) {
        statuses.push(routeStatus(base, 'no-service', { warnings: route.warnings }));
        continue;
      }
      let cached = entry.route;
      const inputs = cached === undefined ? 'different' : this.compareInputs(cached, services, topology);
      if (cached === undefined || inputs === 'different') {
        const output = renderRoute(route, entry.name, services, topology, this.options);
        const status = routeStatus(base, output.state, { router: output.name, servers: output.servers, warnings: output.warnings });
        cached = { services, tasks: tasksOf(services, topology), nodes: topology.nodes, output, status };
        entry.route = cached;
        rendered += 1;
      } else if (inputs === 'equal') {
        // Same content in new objects: remember them, so the next comparison is by identity.
        cached.services = services;
        cached.tasks = tasksOf(services, topology);
        cached.nodes = topology.nodes;
      }
      outputs.push(cached.output);
      outputRows.push(entry);
      outputStatuses.push(statuses.length);
      statuses.push(cached.status);
    }
    const { ordered, collisions } = this.byName(outputs);
    for (const [loser, winner] of collisions) {
      const reason = `its route name ${outputs[loser]!.name} is taken by route ${outputRows[winner]!.base.id}`;
      statuses[outputStatuses[loser]!] = routeStatus(outputRows[loser]!.base, 'rejected', { field: 'id', reason });
    }
    return assemble(ordered, statuses, rendered);
  }

  /**
   * Keeps, per host and path, the valid rows that claim it in id order; the first owns the route.
   * Only rows that came or went since the last render are looked up: the walk above already
   * marked every row it saw with this generation.
   */
  private updateClaims(valid: readonly RowEntry[], added: readonly RowEntry[], generation: number): void {
    const touched = new Set<string>();
    for (const entry of this.lastRows) {
      if (entry.seen === generation) continue;
      const list = this.claims.get(entry.matchKey);
      if (list === undefined) continue;
      const at = list.indexOf(entry);
      if (at !== -1) list.splice(at, 1);
      if (list.length === 0) this.claims.delete(entry.matchKey);
      touched.add(entry.matchKey);
    }
    for (const entry of added) {
      const list = this.claims.get(entry.matchKey);
      if (list === undefined) this.claims.set(entry.matchKey, [entry]);
      else {
        list.push(entry);
        list.sort((a, b) => compare(a.base.id, b.base.id));
      }
      touched.add(entry.matchKey);
    }
    for (const key of touched) {
      const list = this.claims.get(key);
      if (list === undefined) continue;
      for (const entry of list) entry.owner = list[0]!.base.id;
    }
    this.lastRows = valid;
  }

  /** Services by deployment; rebuilt only when the set of service objects changed. */
  private servicesIndex(topology: Topology): ServicesIndex {
    const current = topology.services;
    let same = current.size === this.lastServices.length;
    if (same) {
      let i = 0;
      for (const service of current.values()) {
        if (service !== this.lastServices[i++]) {
          same = false;
          break;
        }
      }
    }
    if (!same) {
      this.lastServices = [...current.values()];
      this.lastIndex = indexServices(topology);
      this.indexVersion += 1;
    }
    return this.lastIndex;
  }

  /**
   * The outputs in name order, without a second route of the same name: of rows whose names
   * collide, the first by id keeps it and the others are refused, so no row can replace another's
   * route. Sorting 100,000 names costs more than the rest of a small change: the order (and its
   * collisions) is reused while the names are the same.
   */
  private byName(outputs: readonly RouteOutput[]): { ordered: RouteOutput[]; collisions: ReadonlyArray<readonly [loser: number, winner: number]> } {
    const names = outputs.map((output) => output.name);
    if (names.length !== this.lastNames.length || names.some((name, i) => name !== this.lastNames[i])) {
      const sorted = names.map((_, i) => i).sort((a, b) => compare(names[a]!, names[b]!) || a - b);
      const kept: number[] = [];
      const collisions: Array<[number, number]> = [];
      for (const i of sorted) {
        const first = kept.at(-1);
        if (first !== undefined && names[first] === names[i]) collisions.push([i, first]);
        else kept.push(i);
      }
      this.lastOrder = kept;
      this.lastCollisions = collisions;
    }
    this.lastNames = names;
    return { ordered: this.lastOrder.map((i) => outputs[i]!), collisions: this.lastCollisions };
  }

  private rowEntry(row: RoutingRow): RowEntry {
    let entry = this.rowCache.get(row);
    if (entry !== undefined) return entry;
    const validation = validateRow(row, { certResolver: this.options.defaultCertResolver });
    const base = {
      id: row.id,
      deploymentId: typeof row.deployment_id === 'string' ? row.deployment_id.slice(0, 128) : '',
      domain: typeof row.domain === 'string' ? row.domain.slice(0, 300) : '',
      pathPrefix: typeof row.path_prefix === 'string' ? row.path_prefix.slice(0, 300) : '',
    };
    if (validation.ok) {
      const route = validation.route;
      entry = {
        validation,
        base,
        matchKey: `${route.wildcard ? '*.' : ''}${route.host}|${route.pathPrefix}`,
        deploymentId: route.deploymentId,
        serviceName: route.serviceName,
        name: this.nameOf(route),
        ...NO_STATE,
      };
    } else {
      entry = { validation, base, matchKey: '', deploymentId: '', serviceName: '', name: '', ...NO_STATE };
    }
    this.rowCache.set(row, entry);
    return entry;
  }

  /**
   * Whether a route's swarm inputs are what its cached output was rendered from. Usually they
   * are the very same objects; after a full reconcile (new objects, mostly equal content) the
   * fingerprints of what rendering reads decide.
   */
  private compareInputs(cached: RouteEntry, services: readonly SwarmService[], topology: Topology): 'identical' | 'equal' | 'different' {
    if (cached.services.length !== services.length) return 'different';
    let identical = cached.nodes === topology.nodes;
    for (let i = 0; identical && i < services.length; i++) {
      identical = cached.services[i] === services[i] && cached.tasks[i] === topology.tasks.get(services[i]!.id);
    }
    if (identical) return 'identical';
    if (this.fingerprint(cached.nodes) !== this.fingerprint(topology.nodes)) return 'different';
    for (let i = 0; i < services.length; i++) {
      if (this.fingerprint(cached.services[i]) !== this.fingerprint(services[i])) return 'different';
      if (this.fingerprint(cached.tasks[i]) !== this.fingerprint(topology.tasks.get(services[i]!.id))) return 'different';
    }
    return 'equal';
  }

  /** Everything rendering reads from a service, a task list or the node map, as a string. */
  private fingerprint(value: SwarmService | readonly SwarmTask[] | Topology['nodes'] | undefined): string {
    if (value === undefined) return '';
    let key = this.fingerprints.get(value);
    if (key === undefined) {
      if (value instanceof Map) key = JSON.stringify([...(value as Topology['nodes']).values()].map((n) => [n.id, n.address]));
      else if (Array.isArray(value)) key = JSON.stringify((value as readonly SwarmTask[]).map((t) => [t.id, t.state, t.nodeId, t.addresses]));
      else {
        const service = value as SwarmService;
        key = JSON.stringify([service.id, service.name, service.hostNetwork, service.ports, service.labels]);
      }
      this.fingerprints.set(value, key);
    }
    return key;
  }
}

/** One-shot rendering, without a cache to keep. */
export function renderTraefikConfig(rows: readonly RoutingRow[], topology: Topology, options: RenderOptions): { config: DynamicConfig; body: Buffer; statuses: readonly RouteStatus[] } {
  const result = new TraefikRenderer(options).render(rows, topology);
  return { config: result.config(), body: result.body, statuses: result.statuses };
}

/** Built field by field, all with one shape (object spread is slow on this path). */
function routeStatus(
  base: RowEntry['base'],
  state: RouteState,
  more: { router?: string; servers?: number; field?: string; reason?: string; warnings?: readonly string[] },
): RouteStatus {
  return {
    id: base.id,
    deploymentId: base.deploymentId,
    domain: base.domain,
    pathPrefix: base.pathPrefix,
    state,
    router: more.router,
    servers: more.servers ?? 0,
    field: more.field,
    reason: more.reason,
    warnings: more.warnings ?? [],
  };
}

/** A row entry's renderer state before its first render. */
const NO_STATE = { seen: -1, owner: '', services: undefined, indexVersion: -1, route: undefined } as const;

function sortedById(rows: readonly RoutingRow[]): readonly RoutingRow[] {
  for (let i = 1; i < rows.length; i++) {
    if (compare(rows[i - 1]!.id, rows[i]!.id) > 0) return [...rows].sort((a, b) => compare(a.id, b.id));
  }
  return rows;
}


function tasksOf(services: readonly SwarmService[], topology: Topology): Array<readonly SwarmTask[] | undefined> {
  return services.map((service) => topology.tasks.get(service.id));
}

/**
 * Deployment id → service name → the swarm services, sorted by name. Two levels rather than one
 * map keyed by a joined string: a joined key is a new string per row, hashed at every lookup (the
 * largest single cost of a cold render's walk).
 */
type ServicesIndex = Map<string, Map<string, SwarmService[]>>;

function indexServices(topology: Topology): ServicesIndex {
  const index: ServicesIndex = new Map();
  for (const service of topology.services.values()) {
    let byName = index.get(service.deploymentId);
    if (byName === undefined) index.set(service.deploymentId, (byName = new Map<string, SwarmService[]>()));
    const list = byName.get(service.serviceName);
    if (list) list.push(service);
    else byName.set(service.serviceName, [service]);
  }
  for (const byName of index.values()) for (const list of byName.values()) if (list.length > 1) list.sort((a, b) => compare(a.name, b.name));
  return index;
}

const OPEN = Buffer.from('{\n "http": {\n');
const CLOSE = Buffer.from('\n }\n}');
const SEPARATOR = Buffer.from(',\n');
const MAP_CLOSE = Buffer.from('\n  }');
const mapOpen = (key: string) => Buffer.from(`  "${key}": {\n`);
const MAP_OPEN = { middlewares: mapOpen('middlewares'), routers: mapOpen('routers'), services: mapOpen('services') };

/**
 * Builds the document from the routes' cached entry bytes, each name map in key order. Bytes
 * rather than strings: a publish after a small change then copies them once, with no encoding.
 */
function assemble(outputs: readonly RouteOutput[], statuses: readonly RouteStatus[], rendered: number): RenderResult {
  // Outputs come in route-name order, so each map comes out nearly sorted: the sorts below then
  // cost about a pass.
  const middlewares = [...SHARED_MIDDLEWARES];
  const routers: ConfigEntry[] = [];
  const services: ConfigEntry[] = [];
  for (const output of outputs) {
    for (const entry of output.routers) routers.push(entry);
    for (const entry of output.services) services.push(entry);
    for (const entry of output.middlewares) middlewares.push(entry);
  }
  const maps: Array<[keyof typeof MAP_OPEN, ConfigEntry[]]> = [['middlewares', middlewares]];
  if (routers.length > 0) maps.push(['routers', routers], ['services', services]);

  const parts: Buffer[] = [OPEN];
  for (const [key, entries] of maps) {
    entries.sort((a, b) => compare(a.name, b.name));
    if (key !== 'middlewares') parts.push(SEPARATOR);
    parts.push(MAP_OPEN[key]);
    for (let i = 0; i < entries.length; i++) {
      if (i > 0) parts.push(SEPARATOR);
      parts.push(entries[i]!.bytes);
    }
    parts.push(MAP_CLOSE);
  }
  parts.push(CLOSE);

  const body = Buffer.concat(parts);
  let config: DynamicConfig | undefined;
  // Parsed back rather than kept as objects: the cache then holds bytes, not object graphs.
  return { body, statuses, rendered, config: () => (config ??= JSON.parse(body.toString()) as DynamicConfig) };
}
