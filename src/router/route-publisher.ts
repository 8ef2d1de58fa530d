/**
 * Joins the routing table and the swarm topology and publishes the result: the routes file, the
 * body served to Traefik's HTTP provider, and (when configured) the Redis KV tree.
 *
 * Changes are coalesced: while a publish runs, further changes wait and the next publish takes
 * them all. Nothing is published before both sources have been read once (an empty first
 * publish would wipe every route). While the routing table cannot be read, the live topology is
 * published joined with the last rows read, marked stale: routing to tasks that no longer exist is
 * worse than routing from slightly old rows.
 *
 * The publisher owns the `routes` entry of /health: down ("not yet published") until the first
 * publish, and down with the error while the file or the Redis tree cannot be written.
 */
import type { Logger } from '../lib/logger.js';
import type { Topology } from '../discovery/index.js';
import type { RedisPublisher } from './redis-publisher.js';
import type { TraefikFileWriter } from './traefik-file-writer.js';
import { TraefikRenderer, type RenderOptions, type RenderResult, type RouteStatus } from './traefik-config.js';
import type { RoutingRow } from './routing-table.js';
import { errorMessage } from '../lib/errors.js';
import { notifyAll } from '../lib/listeners.js';
import type { StartStages } from './start-trace.js';

export interface RouterTelemetry {
  published(result: {
    changed: boolean;
    renderMs: number;
    writeMs: number;
    convergenceMs: number;
    routes: number;
    rejected: number;
  }): void;
  rowRejected(field: string): void;
  /** A local task start reached the routes file (start-trace.ts). */
  startPublished(stages: StartStages): void;
  publishFailed(target: 'render' | 'file' | 'redis'): void;
}

export interface PublisherSources {
  /** Last rows read, and whether that read is current (the table is readable now). */
  rows(): { rows: readonly RoutingRow[] | undefined; fresh: boolean };
  topology(): { topology: Topology; synced: boolean };
}

export interface RouteCounts {
  readonly active: number;
  readonly noReplicas: number;
  readonly noService: number;
  readonly rejected: number;
}

export interface PublishedState {
  readonly body: Buffer | undefined;
  /** Published from the last rows read while the routing table cannot be read. */
  readonly stale: boolean;
  readonly statuses: readonly RouteStatus[];
  /** Counted once per publish: /health must not walk every route on every request. */
  readonly counts: RouteCounts;
  readonly publishedAt: number | undefined;
  readonly waitingFor: string | undefined;
}

/** A publish read its sources at `snapshotAt` and had the routes file in place at `writtenAt` (performance.now()). */
export type PublishedListener = (snapshotAt: number, writtenAt: number) => void;

const PUBLISH_RETRY_MS = 2_000;

/** The health entry this publisher keeps up to date. */
export const ROUTES = 'routes';

export interface PublisherHealth {
  up(name: string): void;
  down(name: string, detail: string): void;
}

/** A target that failed, and since when. */
interface Failure {
  readonly error: string;
  readonly since: number;
}

export type PublishingState =
  | { readonly state: 'not yet published'; readonly waitingFor: string }
  | { readonly state: 'publishing'; readonly stale: boolean }
  | {
      readonly state: 'failing';
      /** The document could not be rendered (a bug): the last one published stays. */
      readonly render: Failure | null;
      readonly file: Failure | null;
      readonly redis: Failure | null;
    };
export class RoutePublisher {
  private body: Buffer | undefined;
  private statuses: readonly RouteStatus[] = [];
  private counts: RouteCounts = { active: 0, noReplicas: 0, noService: 0, rejected: 0 };
  private publishedAt: number | undefined;
  private waitingFor: string | undefined = 'first read of the routing table and the swarm';
  private running: Promise<void> | undefined;
  private dirtySince: number | undefined;
  private rejectedKeys = new Set<string>();
  private stale = false;
  private renderFailure: Failure | undefined;
  private fileFailure: Failure | undefined;
  private redisFailure: Failure | undefined;
  private renderer: TraefikRenderer;
  private readonly publishedListeners: PublishedListener[] = [];

  constructor(
    private readonly options: RenderOptions,
    private readonly deps: {
      sources: PublisherSources;
      file: TraefikFileWriter;
      redis: RedisPublisher | undefined;
      telemetry: RouterTelemetry;
      health?: PublisherHealth;
      log: Logger;
    },
  ) {
    this.renderer = new TraefikRenderer(options);
  }

  state(): PublishedState {
    return {
      body: this.body,
      stale: this.stale,
      statuses: this.statuses,
      counts: this.counts,
      publishedAt: this.publishedAt,
      waitingFor: this.waitingFor,
    };
  }

  /** Every publish that put the routes file in place (changed or not). */
  onPublished(listener: PublishedListener): void {
    this.publishedListeners.push(listener);
  }

  /** What /health shows of publishing. */
  publishing(): PublishingState {
    if (this.renderFailure !== undefined || this.fileFailure !== undefined || this.redisFailure !== undefined) {
      return {
        state: 'failing',
        render: this.renderFailure ?? null,
        file: this.fileFailure ?? null,
        redis: this.redisFailure ?? null,
      };
    }
    if (this.body === undefined)
      return { state: 'not yet published', waitingFor: this.waitingFor ?? 'the first publish' };
    return { state: 'publishing', stale: this.stale };
  }

  /** The outcome of a Redis sync (RedisPublisher reports each attempt). */
  redisSynced(error: Error | undefined): void {
    if (error === undefined) this.redisFailure = undefined;
    else this.redisFailure ??= { error: error.message, since: Date.now() };
    this.reportHealth();
  }

  private reportHealth(): void {
    const health = this.deps.health;
    if (health === undefined) return;
    const state = this.publishing();
    if (state.state === 'publishing') health.up(ROUTES);
    else if (state.state === 'not yet published')
      health.down(ROUTES, `not yet published: waiting for ${state.waitingFor}`);
    else {
      const told = (what: string, failure: Failure) =>
        `${what}: ${failure.error} (since ${new Date(failure.since).toISOString()})`;
      const parts = [];
      if (state.render) parts.push(told('rendering', state.render));
      if (state.file) parts.push(told(`routes file ${this.deps.file.file}`, state.file));
      if (state.redis) parts.push(told('redis provider', state.redis));
      health.down(ROUTES, `publishing fails: ${parts.join('; ')}`);
    }
  }

  /** Something changed at `causedAt` (performance.now()); publish as soon as possible. */
  changed(causedAt: number): void {
    this.dirtySince = Math.min(this.dirtySince ?? causedAt, causedAt);
    if (!this.running) this.running = this.drain();
  }

  /** Resolves when no publish is running or queued (for tests and shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    // Let the events of the same tick (a burst of notifications) join this publish.
    await new Promise((resolve) => setImmediate(resolve));
    try {
      while (this.dirtySince !== undefined) {
        const causedAt = this.dirtySince;
        this.dirtySince = undefined;
        try {
          await this.publishOnce(causedAt);
        } catch {
          // Logged in publishOnce; the last good file stays. Retry on a timer, since nothing
          // else may change for a while (a full disk, a read-only mount being fixed).
          const retry = setTimeout(() => this.changed(causedAt), PUBLISH_RETRY_MS);
          retry.unref();
          this.dirtySince = undefined;
          break;
        }
      }
    } finally {
      this.running = undefined;
    }
  }

  private async publishOnce(causedAt: number): Promise<void> {
    const snapshotAt = performance.now();
    const { rows, fresh } = this.deps.sources.rows();
    const { topology, synced } = this.deps.sources.topology();
    if (rows === undefined || !synced) {
      this.waitingFor = rows === undefined ? 'first read of the routing table' : 'first sync with the swarm';
      this.reportHealth();
      return;
    }
    this.waitingFor = undefined;
    if (this.stale !== !fresh) {
      this.stale = !fresh;
      if (this.stale)
        this.deps.log.warn('the routing table cannot be read: publishing the live swarm with the last rows read');
      else this.deps.log.info('the routing table is readable again');
    }

    const renderStart = performance.now();
    let rendered: RenderResult;
    try {
      rendered = this.renderer.render(rows, topology);
      this.renderFailure = undefined;
    } catch (error) {
      // A bug, not an input: every row is validated before rendering. Retried on the timer; the
      // last good document stays published.
      this.renderFailure = this.failed(
        'render',
        this.renderFailure,
        error,
        {},
        'could not render the routes; keeping the last good document and retrying',
      );
      // Its caches may hold half of that render: the retry starts from a fresh renderer.
      this.renderer = new TraefikRenderer(this.options);
      this.reportHealth();
      throw error;
    }
    const { body, statuses } = rendered;
    const renderMs = performance.now() - renderStart;
    this.reportRejections(statuses);
    this.statuses = statuses;
    this.counts = countStates(statuses);
    this.body = body;

    const writeStart = performance.now();
    let changed = false;
    try {
      changed = await this.deps.file.write(body);
      this.fileFailure = undefined;
    } catch (error) {
      this.fileFailure = this.failed(
        'file',
        this.fileFailure,
        error,
        { file: this.deps.file.file },
        'could not write the routes file; keeping the last good one and retrying',
      );
      this.reportHealth();
      throw error;
    }
    this.reportHealth();
    const writtenAt = performance.now();
    const writeMs = writtenAt - writeStart;
    const convergenceMs = writtenAt - causedAt;
    if (changed) this.publishedAt = Date.now();
    const { rejected } = this.counts;
    this.deps.telemetry.published({
      changed,
      renderMs,
      writeMs,
      convergenceMs,
      routes: statuses.length - rejected,
      rejected,
    });
    notifyAll(this.publishedListeners, [snapshotAt, writtenAt], this.deps.log, 'published');

    // Redis keeps its own pace (lock, retries) and never holds up the next publish: see RedisPublisher.
    void this.deps.redis?.offer(rendered.config);
  }

  /** A failed render or write: counted every time, logged when it starts failing, kept with since when. */
  private failed(
    target: 'render' | 'file',
    ongoing: Failure | undefined,
    error: unknown,
    fields: Record<string, unknown>,
    message: string,
  ): Failure {
    this.deps.telemetry.publishFailed(target);
    if (ongoing !== undefined) return ongoing;
    this.deps.log.error({ err: error, ...fields }, message);
    return { error: errorMessage(error), since: Date.now() };
  }

  /** Logs and counts a rejection when it first appears, not on every publish. */
  private reportRejections(statuses: readonly RouteStatus[]): void {
    const seen = new Set<string>();
    for (const status of statuses) {
      if (status.state !== 'rejected') continue;
      const key = `${status.id}\u0000${status.field ?? ''}\u0000${status.reason ?? ''}`;
      seen.add(key);
      if (this.rejectedKeys.has(key)) continue;
      this.deps.telemetry.rowRejected(status.field ?? 'row');
      this.deps.log.warn(
        {
          routeId: status.id,
          deploymentId: status.deploymentId,
          field: status.field,
          reason: status.reason,
          domain: status.domain,
          pathPrefix: status.pathPrefix,
        },
        'routing row rejected',
      );
    }
    this.rejectedKeys = seen;
  }
}

function countStates(statuses: readonly RouteStatus[]): RouteCounts {
  const counts = { active: 0, noReplicas: 0, noService: 0, rejected: 0 };
  for (const status of statuses) {
    if (status.state === 'active') counts.active += 1;
    else if (status.state === 'no-replicas') counts.noReplicas += 1;
    else if (status.state === 'no-service') counts.noService += 1;
    else counts.rejected += 1;
  }
  return counts;
}
