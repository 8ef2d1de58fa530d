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
 * A change re-renders only the routes it touches; the document is then assembled from the
 * routes' bytes (config-document.ts): JSON (hence YAML), one line per router, service and
 * middleware (see configEntry).
 */
import type { SwarmService, SwarmTask, Topology } from '../discovery/index.js';
import { ByteArena } from './byte-arena.js';
import { ClaimIndex } from './claim-index.js';
import { DEFAULT_HOST_POLICY, type HostPolicy } from './host-policy.js';
import { assembleDocument } from './config-document.js';
import {
  compare,
  RenderContext,
  renderRoute,
  routeName,
  RouteOutput,
  type RenderOptions,
  type GroupRole,
} from './route-render.js';
import { validateRow, type Route, type ValidationDefaults } from './route-validation.js';
import { renderStreamRoute, streamSections, type StreamOutput } from './stream-render.js';
import type { RoutingRow } from './routing-table.js';

export { ERROR_PAGE_PATH, routeName, UNAVAILABLE_PATH } from './route-render.js';
export type { RenderOptions } from './route-render.js';

export interface DynamicConfig {
  readonly http: {
    readonly middlewares: Record<string, unknown>;
    readonly routers?: Record<string, unknown>;
    readonly services?: Record<string, unknown>;
  };
  readonly tcp?: {
    readonly middlewares?: Record<string, unknown>;
    readonly routers: Record<string, unknown>;
    readonly services: Record<string, unknown>;
  };
  readonly udp?: { readonly routers: Record<string, unknown>; readonly services: Record<string, unknown> };
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

/** Shared by every entry not rendered yet: a new empty array each would be two more objects per row to keep. */
const NOTHING: readonly never[] = Object.freeze([]);

/** A row of a group that publishes, with its services and its status's place. */
interface GroupRow {
  readonly entry: RowEntry;
  readonly services: readonly SwarmService[];
  readonly statusAt: number;
}

/**
 * The rows of one host and path rendered together, each time (never from the cache): the split's
 * weighted rows (the leader among them), or the leader alone when not split; and its shadows.
 */
interface Group {
  readonly rows: GroupRow[];
  readonly shadows: GroupRow[];
}

/**
 * What a row yields, kept per row object (RoutingTable hands out the same object while a row is
 * unchanged), with the renderer's state for that row: so that a publish where little changed
 * reads fields instead of looking 100,000 keys up in maps. One object per row, of one shape, that
 * is also the slot of the row's rendered route (RouteOutput): a cold render keeps one for every
 * row alive, and fewer, smaller objects are less to collect.
 */
class RowEntry extends RouteOutput {
  /** The last render whose rows included this one. */
  seen = -1;
  /** Set when a new object of the same row took this one's place in the cache. */
  replaced = false;
  /** Why another row keeps this row's host (or host and path, or entry point); '' when this row may publish. */
  conflict = '';
  /** The row's field the conflict is about. */
  conflictField: 'domain' | 'entry_point' = 'domain';
  /** A TCP or UDP route's rendering (its HTTP sections stay empty). */
  stream: StreamOutput | undefined = undefined;
  /** The deployment's services, as of services index `indexVersion`. */
  services: SwarmService[] | undefined = undefined;
  indexVersion = -1;
  /** The route's status as last rendered. */
  status: RouteStatus | undefined = undefined;
  /**
   * The swarm objects the output (the inherited fields, while `hasSections`) was rendered from:
   * the services and node map, the task list of the first service, and those of the others. Most
   * deployments have one service, so its tasks are kept without an array around them; only
   * rememberInputs and tasksRendered know this.
   */
  renderedServices: readonly SwarmService[] = NOTHING;
  renderedNodes: Topology['nodes'] | undefined = undefined;
  private firstTasks: readonly SwarmTask[] | undefined = undefined;
  private moreTasks: ReadonlyArray<readonly SwarmTask[] | undefined> = NOTHING;

  /** The row's id; with deploymentId, domain and pathPrefix (bounded in length), what statuses and logs name it by. */
  readonly id: string;

  constructor(
    /** The row object this entry was made from: RoutingTable hands out a new one when the row changes. */
    readonly row: RoutingRow,
    readonly deploymentId: string,
    readonly domain: string,
    readonly pathPrefix: string,
    /** undefined: the row is rejected, for `reason`, in `field`. */
    readonly route: Route | undefined,
    readonly field: string,
    readonly reason: string,
    /** Host and path: two rows may not claim the same. */
    readonly matchKey: string,
    /** The host (`*.host` for a wildcard): one deployment holds it, unless sharing is allowed. */
    readonly hostKey: string,
    /** A TCP or UDP route's own entry point (`tcp:name`, `udp:name`); '' for routes on the web entry points. */
    readonly entryPointKey: string,
    /** The route's name ('' for a rejected row). */
    name: string,
  ) {
    super(name);
    this.id = row.id;
  }

  /** Remembers what the output was rendered from (or what equals it), for compareInputs. */
  rememberInputs(services: readonly SwarmService[], topology: Topology): void {
    this.renderedServices = services;
    this.renderedNodes = topology.nodes;
    this.firstTasks = topology.tasks.get(services[0]!.id);
    this.moreTasks =
      services.length === 1 ? NOTHING : services.slice(1).map((service) => topology.tasks.get(service.id));
  }

  /**
   * The output was rendered as part of a group (traefik-config's renderGroups), from more than its
   * own inputs: the next render outside a group must not take it from the cache.
   */
  forgetInputs(): void {
    this.renderedServices = NOTHING;
  }

  /** The task list of rendered service i, as rendered. */
  tasksRendered(i: number): readonly SwarmTask[] | undefined {
    return i === 0 ? this.firstTasks : this.moreTasks[i - 1];
  }
}

export class TraefikRenderer {
  /**
   * Row entries by row id, each valid while its row object is the one the table hands out. A
   * strong map, swept after each render, rather than a WeakMap: 100,000 ephemerons slow every
   * garbage collection down.
   */
  private readonly rowCache = new Map<string, RowEntry>();
  /** Every row entry of the last render. */
  private lastEntries: readonly RowEntry[] = [];
  private generation = 0;
  /** The valid rows of the last render. */
  private lastRows: readonly RowEntry[] = [];
  /** The rows claiming each host and path, and each host, oldest first (see claimedFirst). */
  private readonly claims = new ClaimIndex<RowEntry>(claimedFirst);
  private readonly hostClaims = new ClaimIndex<RowEntry>(claimedFirst);
  /** The TCP and UDP rows on each entry point of their own, oldest first. */
  private readonly entryPointClaims = new ClaimIndex<RowEntry>(claimedFirst);
  private readonly hostPolicy: HostPolicy;
  private readonly fingerprints = new WeakMap<object, string>();
  private lastServices: readonly SwarmService[] = [];
  private lastIndex: ServicesIndex = new Map();
  private indexVersion = 0;
  /** Route names in row order at the last render, and their order by name: reused while the same. */
  private lastNames: readonly string[] = [];
  private lastOrder: readonly number[] = [];
  private lastCollisions: ReadonlyArray<readonly [loser: number, winner: number]> = [];

  private readonly defaults: ValidationDefaults;
  /** Where routes rendered by this call wait for the document (see assemble). */
  private readonly arena = new ByteArena();

  /** What every route's rendering reads from the options, prepared once. */
  private readonly context: RenderContext;

  /** `nameOf` is routeName; tests pass another to force a collision. */
  constructor(
    options: RenderOptions,
    private readonly nameOf: (route: Pick<Route, 'id' | 'deploymentId'>) => string = routeName,
  ) {
    this.context = new RenderContext(options);
    this.hostPolicy = options.hostPolicy ?? DEFAULT_HOST_POLICY;
    this.defaults = {
      certResolver: options.defaultCertResolver,
      hosts: this.hostPolicy,
      ...(options.middlewarePolicy ? { middlewares: options.middlewarePolicy } : {}),
      entryPoints: {
        https: options.entryPoints.https,
        tcp: options.streamEntryPoints?.tcp ?? [],
        udp: options.streamEntryPoints?.udp ?? [],
      },
    };
  }

  render(rows: readonly RoutingRow[], topology: Topology): RenderResult {
    const generation = ++this.generation;
    const entries: RowEntry[] = [];
    const valid: RowEntry[] = [];
    const added: RowEntry[] = [];
    for (const row of sortedById(rows)) {
      const entry = this.rowEntry(row);
      // The same row object twice (ids are unique in the table): counted once.
      if (entry.seen === generation) continue;
      if (entry.route !== undefined) {
        if (entry.seen !== generation - 1) added.push(entry);
        valid.push(entry);
      }
      entry.seen = generation;
      entries.push(entry);
    }
    this.updateClaims(valid, added, generation);
    for (const entry of this.lastEntries) {
      // A replaced entry's id now maps to its successor: only rows that are gone leave the cache.
      if (entry.seen !== generation && !entry.replaced) this.rowCache.delete(entry.id);
    }
    this.lastEntries = entries;

    const statuses: RouteStatus[] = [];
    /** The rows whose routes go into the document, and the index of each one's status. */
    const outputs: RowEntry[] = [];
    const outputStatuses: number[] = [];
    const servicesByDeployment = this.servicesIndex(topology);
    let rendered = 0;
    /** The groups that publish, by their leader: the row holding their host and path. */
    const groups = new Map<RowEntry, Group>();
    const groupOf = (leader: RowEntry) => {
      let group = groups.get(leader);
      if (group === undefined) groups.set(leader, (group = { rows: [], shadows: [] }));
      return group;
    };
    const mirrored = this.mirroredRoutes(valid);
    /** The TCP and UDP routes that publish, and the index of each one's status. */
    const streams: RowEntry[] = [];
    const streamStatuses: number[] = [];

    for (const entry of entries) {
      const route = entry.route;
      if (route === undefined) {
        statuses.push(routeStatus(entry, 'rejected', { field: entry.field, reason: entry.reason }));
        continue;
      }
      if (entry.conflict !== '') {
        // Left out of the document: its sections would keep the last document they were in alive.
        if (entry.hasSections) entry.clearSections();
        entry.stream = undefined;
        statuses.push(routeStatus(entry, 'rejected', { field: entry.conflictField, reason: entry.conflict }));
        continue;
      }
      const mirrorOf = route.mirrorPercent === undefined ? undefined : this.shadowLeader(entry);
      if (typeof mirrorOf === 'string') {
        if (entry.hasSections) entry.clearSections();
        statuses.push(routeStatus(entry, 'rejected', { field: 'mirror_percent', reason: mirrorOf }));
        continue;
      }
      if (entry.indexVersion !== this.indexVersion) {
        entry.services = servicesOf(servicesByDeployment, route.deploymentId, route.serviceName);
        entry.indexVersion = this.indexVersion;
      }
      const services = entry.services;
      if (services === undefined) {
        if (entry.hasSections) entry.clearSections();
        entry.stream = undefined;
        statuses.push(routeStatus(entry, 'no-service', { warnings: route.warnings }));
        continue;
      }
      if (route.stream !== undefined) {
        const inputs = entry.stream !== undefined ? this.compareInputs(entry, services, topology) : 'different';
        if (inputs === 'different') {
          const output = renderStreamRoute(route, entry.name, services, topology, this.context.options.network);
          entry.stream = output;
          entry.status = routeStatus(entry, output.state, {
            router: entry.name,
            servers: output.servers,
            warnings: output.warnings,
          });
          rendered += 1;
        }
        if (inputs !== 'identical') entry.rememberInputs(services, topology);
        streams.push(entry);
        streamStatuses.push(statuses.length);
        statuses.push(entry.status!);
        continue;
      }
      if (route.weight !== undefined || mirrorOf !== undefined || mirrored.has(entry)) {
        // Rendered after every other row, once the group's rows that publish are known.
        const row = { entry, services, statusAt: statuses.length };
        if (mirrorOf !== undefined) groupOf(mirrorOf).shadows.push(row);
        else groupOf(route.weight === undefined ? entry : this.claims.holder(entry.matchKey)!).rows.push(row);
        outputs.push(entry);
        outputStatuses.push(statuses.length);
        statuses.push(entry.status!);
        continue;
      }
      const inputs = entry.hasSections ? this.compareInputs(entry, services, topology) : 'different';
      if (inputs === 'different') {
        renderRoute(route, entry, services, topology, this.context, this.arena);
        entry.status = routeStatus(entry, entry.state, {
          router: entry.name,
          servers: entry.servers,
          warnings: entry.warnings,
        });
        rendered += 1;
      }
      if (inputs !== 'identical') {
        // Rendered now, or the same content in new objects: remember them, so that the next
        // comparison is by identity.
        entry.rememberInputs(services, topology);
      }
      outputs.push(entry);
      outputStatuses.push(statuses.length);
      statuses.push(entry.status!);
    }
    rendered += this.renderGroups(groups, topology, statuses);
    const { ordered, collisions } = this.byName(outputs);
    for (const [loser, winner] of collisions) {
      const reason = `its route name ${outputs[loser]!.name} is taken by route ${outputs[winner]!.id}`;
      statuses[outputStatuses[loser]!] = routeStatus(outputs[loser]!, 'rejected', { field: 'id', reason });
      outputs[loser]!.clearSections();
    }
    return assemble(ordered, this.streamTail(streams, streamStatuses, statuses), statuses, rendered);
  }

  /**
   * The rows of each group: every one renders its own service, and the leader (the row that
   * claimed the host and path first) the router, to its service, or to a weighted service over
   * the split's rows, with a mirroring service around either when shadows have a replica. A group
   * depends on rows besides its own: it is rendered every time, never taken from the cache. A
   * group whose leader has no service publishes no router (the host then answers 404 until it
   * has one); its other rows' services are published, unused.
   */
  private renderGroups(groups: ReadonlyMap<RowEntry, Group>, topology: Topology, statuses: RouteStatus[]): number {
    let rendered = 0;
    const render = (row: GroupRow, role: GroupRole, leader: RowEntry) => {
      const entry = row.entry;
      renderRoute(entry.route!, entry, row.services, topology, this.context, this.arena, role);
      entry.forgetInputs();
      entry.status = routeStatus(entry, entry.state, {
        router: leader.name,
        servers: entry.servers,
        warnings: entry.warnings,
      });
      statuses[row.statusAt] = entry.status;
      rendered += 1;
    };
    const byName = (a: { name: string }, b: { name: string }) => compare(a.name, b.name);
    for (const [leader, group] of groups) {
      // The others first: whether any has a replica decides whether the router is live, and
      // which shadows get copies.
      let othersLive = false;
      for (const row of group.rows) {
        if (row.entry === leader) continue;
        render(row, { leader: false }, leader);
        if (row.entry.servers > 0) othersLive = true;
      }
      const mirrors: Array<{ name: string; percent: number }> = [];
      for (const row of group.shadows) {
        render(row, { leader: false }, leader);
        if (row.entry.servers > 0) mirrors.push({ name: row.entry.name, percent: row.entry.route!.mirrorPercent! });
      }
      const first = group.rows.find((row) => row.entry === leader);
      if (first === undefined) {
        const unused = `the route it mirrors (route ${leader.id}) publishes no router: its deployment has no service`;
        for (const { entry, statusAt } of group.shadows)
          statuses[statusAt] = entry.status = { ...entry.status!, warnings: [...entry.status!.warnings, unused] };
        continue;
      }
      const members = group.rows
        .filter(({ entry }) => entry.route!.weight !== undefined)
        .map(({ entry }) => ({ name: entry.name, weight: entry.route!.weight! }))
        .sort(byName);
      const sticky = members.length > 0 && group.rows.some(({ entry }) => entry.route!.sticky);
      render(first, { leader: true, members, sticky, othersLive, mirrors: mirrors.sort(byName) }, leader);
    }
    return rendered;
  }

  /**
   * The routes that shadows mirror (each a leader of a group), so that their rows are rendered in
   * a group whatever their order. Shadows are few: one pass over the rows' routes finds them.
   */
  private mirroredRoutes(valid: readonly RowEntry[]): ReadonlySet<RowEntry> {
    let mirrored: Set<RowEntry> | undefined;
    for (const entry of valid) {
      if (entry.route!.mirrorPercent === undefined || entry.conflict !== '') continue;
      const leader = this.shadowLeader(entry);
      if (typeof leader !== 'string') (mirrored ??= new Set()).add(leader);
    }
    return mirrored ?? NO_ENTRIES;
  }

  /** The route a shadow mirrors (the row holding its host and path), or why it has none. */
  private shadowLeader(entry: RowEntry): RowEntry | string {
    const leader = this.claims.holder(entry.matchKey);
    if (leader === undefined) return 'no route holds this host and path: a shadow needs a route to mirror';
    if (leader.conflict !== '') return `the route holding this host and path (route ${leader.id}) is rejected`;
    if (leader.route!.stream !== undefined)
      return `the route holding this host and path (route ${leader.id}) is ${leader.route!.stream.kind.toUpperCase()}: mirroring is for HTTP routes`;
    return leader;
  }

  /**
   * The tcp and udp sections of the routes that publish them. Of two whose names collide (as for
   * HTTP routes), the first by id keeps the name and the other is refused.
   */
  private streamTail(streams: readonly RowEntry[], at: readonly number[], statuses: RouteStatus[]): Buffer {
    if (streams.length === 0) return NO_TAIL;
    const kept = new Map<string, RowEntry>();
    streams.forEach((entry, i) => {
      const first = kept.get(entry.name);
      if (first === undefined) kept.set(entry.name, entry);
      else {
        const reason = `its route name ${entry.name} is taken by route ${first.id}`;
        statuses[at[i]!] = routeStatus(entry, 'rejected', { field: 'id', reason });
      }
    });
    return Buffer.from(streamSections([...kept.values()].map((entry) => entry.stream!)));
  }

  /**
   * Keeps, per host and path and per host, the valid rows that claim it, oldest first. Only rows
   * that came or went since the last render are looked up: the walk above already marked every
   * row it saw with this generation. A row's conflict depends only on the claims of its own host,
   * and, for an exact host, on the wildcard one label above it: so only the rows of the hosts that
   * rows came to or left are decided again, and every row when a wildcard came or went.
   */
  private updateClaims(valid: readonly RowEntry[], added: readonly RowEntry[], generation: number): void {
    let everyRow = false;
    if (added.length > valid.length / 2) {
      // Most rows are new (the first render, or the whole table changed): rebuilding the maps
      // costs less than removing every old row from them.
      this.claims.clear();
      this.hostClaims.clear();
      this.entryPointClaims.clear();
      this.lastRows = [];
      added = valid;
      everyRow = true;
    }
    const touched = new Set<string>();
    const touchedEntryPoints = new Set<string>();
    for (const entry of this.lastRows) {
      if (entry.seen === generation || entry.route!.mirrorPercent !== undefined) continue;
      this.claims.remove(entry.matchKey, entry);
      this.hostClaims.remove(entry.hostKey, entry);
      touched.add(entry.hostKey);
      if (entry.entryPointKey !== '') {
        this.entryPointClaims.remove(entry.entryPointKey, entry);
        touchedEntryPoints.add(entry.entryPointKey);
      }
      if (entry.route!.wildcard) everyRow = true;
    }
    for (const entry of added) {
      // A shadow claims nothing: it mirrors the route that holds its host and path (shadowLeader).
      if (entry.route!.mirrorPercent !== undefined) continue;
      this.claims.add(entry.matchKey, entry);
      this.hostClaims.add(entry.hostKey, entry);
      touched.add(entry.hostKey);
      if (entry.entryPointKey !== '') {
        this.entryPointClaims.add(entry.entryPointKey, entry);
        touchedEntryPoints.add(entry.entryPointKey);
      }
      if (entry.route!.wildcard) everyRow = true;
    }
    if (everyRow) for (const entry of valid) this.decideConflict(entry);
    else {
      for (const key of touched) for (const entry of this.hostClaims.all(key)) this.decideConflict(entry);
      for (const key of touchedEntryPoints)
        for (const entry of this.entryPointClaims.all(key)) this.decideConflict(entry);
    }
    this.lastRows = valid;
  }

  private decideConflict(entry: RowEntry): void {
    if (entry.route!.mirrorPercent !== undefined) return;
    const onEntryPoint = this.entryPointConflict(entry);
    entry.conflictField = onEntryPoint === '' ? 'domain' : 'entry_point';
    entry.conflict = onEntryPoint === '' ? this.conflictOf(entry) : onEntryPoint;
  }

  /**
   * Why an older row keeps this TCP or UDP row's entry point, or ''. A route without a rule (UDP,
   * TCP without TLS) holds its entry point alone; TCP routes with TLS share theirs by host name.
   */
  private entryPointConflict(entry: RowEntry): string {
    if (entry.entryPointKey === '') return '';
    const holder = this.entryPointClaims.holder(entry.entryPointKey)!;
    if (holder === entry || (!holder.route!.stream!.exclusive && !entry.route!.stream!.exclusive)) return '';
    const name = entry.route!.stream!.entryPoint;
    return `entry point ${name} is held by route ${holder.id} of deployment ${holder.route!.deploymentId}, which claimed it first${
      holder.route!.stream!.exclusive ? ' (a route without TLS or without a rule holds its entry point alone)' : ''
    }`;
  }

  /** Why an older row keeps what this row claims, or ''. */
  private conflictOf(entry: RowEntry): string {
    const route = entry.route!;
    const first = this.claims.holder(entry.matchKey)!;
    if (first !== entry) {
      // A split: the first row and this one both carry a weight. The first row's claim is the
      // split's: it may hold the host, and this row shares its router (see renderSplits).
      if (route.weight !== undefined && first.route!.weight !== undefined) return this.conflictOf(first);
      const other =
        first.route!.deploymentId === route.deploymentId ? '' : ` of deployment ${first.route!.deploymentId}`;
      return `same domain and path as route ${first.id}${other}, which claimed it first${lookalike(route, first.route!)}`;
    }
    if (this.hostPolicy.sharing === 'paths') return '';
    const holder = this.hostClaims.holder(entry.hostKey)!;
    if (holder.route!.deploymentId !== route.deploymentId) {
      return `host ${entry.hostKey} is held by deployment ${holder.route!.deploymentId} (route ${holder.id}), which claimed it first${lookalike(route, holder.route!)}`;
    }
    if (!route.wildcard) {
      // *.parent covers this host (one label more): a newer exact host would take its traffic.
      const dot = route.host.indexOf('.');
      const cover = dot === -1 ? undefined : this.hostClaims.holder(`*.${route.host.slice(dot + 1)}`);
      if (cover !== undefined && cover.route!.deploymentId !== route.deploymentId && claimedFirst(cover, entry) < 0) {
        return `host ${route.host} is under *.${cover.route!.host}, held by deployment ${cover.route!.deploymentId} (route ${cover.id}), which claimed it first`;
      }
    }
    return '';
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
  private byName(outputs: readonly RouteOutput[]): {
    ordered: RouteOutput[];
    collisions: ReadonlyArray<readonly [loser: number, winner: number]>;
  } {
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
    let entry = this.rowCache.get(row.id);
    if (entry?.row === row) return entry;
    if (entry !== undefined) entry.replaced = true;
    const validation = validateRow(row, this.defaults);
    const deploymentId = typeof row.deployment_id === 'string' ? row.deployment_id.slice(0, 128) : '';
    const domain = typeof row.domain === 'string' ? row.domain.slice(0, 300) : '';
    const pathPrefix = typeof row.path_prefix === 'string' ? row.path_prefix.slice(0, 300) : '';
    if (validation.ok) {
      const route = validation.route;
      const entryPoint = entryPointKey(route, this.defaults.entryPoints!.https);
      entry = new RowEntry(
        row,
        deploymentId,
        domain,
        pathPrefix,
        route,
        '',
        '',
        matchKey(route, entryPoint),
        hostKey(route),
        entryPoint,
        this.nameOf(route),
      );
    } else {
      entry = new RowEntry(
        row,
        deploymentId,
        domain,
        pathPrefix,
        undefined,
        validation.field,
        validation.reason,
        '',
        '',
        '',
        '',
      );
    }
    this.rowCache.set(row.id, entry);
    return entry;
  }

  /**
   * Whether a route's swarm inputs are what its cached output was rendered from. Usually they
   * are the very same objects; after a full reconcile (new objects, mostly equal content) the
   * fingerprints of what rendering reads decide.
   */
  private compareInputs(
    entry: RowEntry,
    services: readonly SwarmService[],
    topology: Topology,
  ): 'identical' | 'equal' | 'different' {
    const cachedServices = entry.renderedServices;
    if (cachedServices.length !== services.length) return 'different';
    let identical = entry.renderedNodes === topology.nodes;
    for (let i = 0; identical && i < services.length; i++) {
      identical = cachedServices[i] === services[i] && entry.tasksRendered(i) === topology.tasks.get(services[i]!.id);
    }
    if (identical) return 'identical';
    if (this.fingerprint(entry.renderedNodes) !== this.fingerprint(topology.nodes)) return 'different';
    for (let i = 0; i < services.length; i++) {
      if (this.fingerprint(cachedServices[i]) !== this.fingerprint(services[i])) return 'different';
      if (this.fingerprint(entry.tasksRendered(i)) !== this.fingerprint(topology.tasks.get(services[i]!.id)))
        return 'different';
    }
    return 'equal';
  }

  /** Everything rendering reads from a service, a task list or the node map, as a string. */
  private fingerprint(value: SwarmService | readonly SwarmTask[] | Topology['nodes'] | undefined): string {
    if (value === undefined) return '';
    let key = this.fingerprints.get(value);
    if (key === undefined) {
      if (value instanceof Map)
        key = JSON.stringify([...(value as Topology['nodes']).values()].map((n) => [n.id, n.address]));
      else if (Array.isArray(value))
        key = JSON.stringify((value as readonly SwarmTask[]).map((t) => [t.id, t.state, t.nodeId, t.addresses]));
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
export function renderTraefikConfig(
  rows: readonly RoutingRow[],
  topology: Topology,
  options: RenderOptions,
): { config: DynamicConfig; body: Buffer; statuses: readonly RouteStatus[] } {
  const result = new TraefikRenderer(options).render(rows, topology);
  return { config: result.config(), body: result.body, statuses: result.statuses };
}

/** Built field by field, all with one shape (object spread is slow on this path). */
function routeStatus(
  base: Pick<RouteStatus, 'id' | 'deploymentId' | 'domain' | 'pathPrefix'>,
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

/**
 * What two rows may not both claim: host and path. Hosts hold neither "/" nor "*", paths start
 * with "/": a plain host with no path (most routes) is its own key, with no new string to hash.
 * A TCP route with TLS on the HTTPS entry point claims its host as a route for every path would:
 * Traefik gives a TLS connection to a TCP router before any HTTP router. On an entry point of its
 * own it claims host and entry point; a UDP or plain TCP route claims its entry point.
 */
function matchKey(route: Route, entryPointKey: string): string {
  const host = hostKey(route);
  if (entryPointKey !== '') return route.stream!.exclusive ? entryPointKey : `${entryPointKey}:${host}`;
  return route.pathPrefix === '' ? host : host + route.pathPrefix;
}

/** The entry point a TCP or UDP route holds or shares apart from the web ones; '' for the rest. */
function entryPointKey(route: Route, httpsEntryPoint: string): string {
  const stream = route.stream;
  if (stream === undefined || (!stream.exclusive && stream.entryPoint === httpsEntryPoint)) return '';
  return `${stream.kind}:${stream.entryPoint}`;
}

function hostKey(route: Route): string {
  return route.wildcard ? `*.${route.host}` : route.host;
}

/**
 * The order of claims: the older row first (created_at), then the lower id. Ids alone would let
 * a newer row with a lower random id take a live host, and be retried until it did.
 */
function claimedFirst(a: RowEntry, b: RowEntry): number {
  const age = a.route!.createdMs - b.route!.createdMs;
  return age < 0 || age > 0 ? age : compare(a.id, b.id);
}

/** Names the raw domains when normalisation made two different strings the same host. */
function lookalike(route: Route, other: Route): string {
  if (route.rawDomain === undefined && other.rawDomain === undefined) return '';
  const shown = (r: Route) => JSON.stringify(r.rawDomain ?? r.host);
  return ` (${shown(route)} and ${shown(other)} are both ${route.host} once normalised)`;
}

function sortedById(rows: readonly RoutingRow[]): readonly RoutingRow[] {
  for (let i = 1; i < rows.length; i++) {
    if (compare(rows[i - 1]!.id, rows[i]!.id) > 0) return [...rows].sort((a, b) => compare(a.id, b.id));
  }
  return rows;
}

/**
 * Deployment id → its swarm services, sorted by service name, then name. One level, keyed by the
 * id the row already holds: a joined key would be a new string per row, hashed at every lookup,
 * and a map per deployment would be 100,000 more objects to keep.
 */
type ServicesIndex = Map<string, SwarmService[]>;

function indexServices(topology: Topology): ServicesIndex {
  const index: ServicesIndex = new Map();
  for (const service of topology.services.values()) {
    const list = index.get(service.deploymentId);
    if (list) list.push(service);
    else index.set(service.deploymentId, [service]);
  }
  for (const list of index.values())
    if (list.length > 1) list.sort((a, b) => compare(a.serviceName, b.serviceName) || compare(a.name, b.name));
  return index;
}

/** The deployment's services of this service name, sorted by name; undefined if none. */
function servicesOf(index: ServicesIndex, deploymentId: string, serviceName: string): SwarmService[] | undefined {
  const all = index.get(deploymentId);
  if (all === undefined) return undefined;
  // Usually every service of the deployment has the row's service name: the list as it is.
  if (all[0]!.serviceName === serviceName && all[all.length - 1]!.serviceName === serviceName) return all;
  const some = all.filter((service) => service.serviceName === serviceName);
  return some.length > 0 ? some : undefined;
}

const NO_TAIL = Buffer.alloc(0);
const NO_ENTRIES: ReadonlySet<RowEntry> = new Set();

/** The render's result: the document assembled from the routes' bytes, in name order, and the TCP and UDP sections. */
function assemble(
  outputs: readonly RouteOutput[],
  tail: Buffer,
  statuses: readonly RouteStatus[],
  rendered: number,
): RenderResult {
  const body = assembleDocument(outputs, tail);
  let config: DynamicConfig | undefined;
  // Parsed back rather than kept as objects: the cache then holds bytes, not object graphs.
  return { body, statuses, rendered, config: () => (config ??= JSON.parse(body.toString()) as DynamicConfig) };
}
