/**
 * The deployment_routing table as the router sees it: loaded in full at start, on every change
 * notification (the table's trigger NOTIFYs; see db/migrations.ts), after every reconnect of the
 * listening connection, and on the resync tick. A failed load keeps the last good rows and says
 * so: the router never publishes from a table it could not read.
 */
import type { FastifyBaseLogger } from 'fastify';
import pg from 'pg';
import { ROUTING_CHANGED_CHANNEL } from '../db/index.js';
import { backoffDelay } from '../lib/backoff.js';
import { PeriodicJob } from '../lib/periodic-job.js';

/** A row as it comes from the database: every field is untrusted (see route-validation.ts). */
export interface RoutingRow {
  readonly id: string;
  readonly deployment_id: unknown;
  readonly domain: unknown;
  readonly service_name: unknown;
  readonly path_prefix: unknown;
  readonly target_port: unknown;
  readonly protocol: unknown;
  readonly ssl_enabled: unknown;
  readonly ssl_cert_resolver: unknown;
  readonly load_balancer_algo: unknown;
  readonly middleware: unknown;
}

export type RowsListener = (rows: readonly RoutingRow[], causedAt: number) => void;

const SELECT_ROWS = `SELECT id::text AS id, deployment_id, domain, service_name, path_prefix, target_port, protocol,
  ssl_enabled, ssl_cert_resolver, load_balancer_algo, middleware
  FROM deployment_routing ORDER BY id COLLATE "C"`;

export class RoutingTable {
  private rows: readonly RoutingRow[] | undefined;
  private listener: pg.Client | undefined;
  private listenAttempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private stopped = true;
  private pendingCause: number | undefined;
  private readonly loader: PeriodicJob;
  private readonly listeners: RowsListener[] = [];
  private lastError: string | undefined;
  private loads = 0;
  private notifications = 0;

  constructor(
    private readonly options: { url: string; resyncMs: number },
    private readonly deps: {
      pool: Pick<pg.Pool, 'query'>;
      isDatabaseReady: () => boolean;
      onQueryFailure: (error: Error) => void;
      log: FastifyBaseLogger;
    },
  ) {
    this.loader = new PeriodicJob({
      name: 'routing-table-load',
      intervalMs: options.resyncMs,
      backoff: { baseMs: 250, maxMs: 10_000 },
      log: deps.log,
      run: () => this.load(),
    });
  }

  onChange(listener: RowsListener): void {
    this.listeners.push(listener);
  }

  /** The last rows read successfully, or undefined if the table was never read. */
  current(): readonly RoutingRow[] | undefined {
    return this.rows;
  }

  /** True when the rows are the table as it is now: read without error and the database reachable. */
  fresh(): boolean {
    return this.rows !== undefined && this.lastError === undefined && this.deps.isDatabaseReady();
  }

  stats() {
    return { loaded: this.rows !== undefined, rows: this.rows?.length ?? 0, loads: this.loads, notifications: this.notifications, lastError: this.lastError, listening: this.listener !== undefined };
  }

  start(): void {
    this.stopped = false;
    this.loader.start();
    this.listen();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    await this.loader.stop();
    await this.listener?.end().catch(() => undefined);
    this.listener = undefined;
  }

  /** Asks for a reload now (coalesced with any reload already queued). */
  requestReload(causedAt = performance.now()): void {
    this.pendingCause = Math.min(this.pendingCause ?? causedAt, causedAt);
    this.loader.trigger();
  }

  private async load(): Promise<void> {
    if (!this.deps.isDatabaseReady()) throw new Error('database not ready');
    const causedAt = this.pendingCause ?? performance.now();
    this.pendingCause = undefined;
    try {
      const result = await this.deps.pool.query<RoutingRow>(SELECT_ROWS);
      this.rows = reuseUnchanged(this.rows, result.rows);
      this.loads += 1;
      this.lastError = undefined;
    } catch (error) {
      this.lastError = (error as Error).message;
      this.pendingCause ??= causedAt;
      this.deps.onQueryFailure(error as Error);
      throw error;
    }
    for (const listener of this.listeners) listener(this.rows, causedAt);
  }

  // A dedicated connection outside the pool: LISTEN lives as long as the session.
  private listen(): void {
    if (this.stopped) return;
    const client = new pg.Client({ connectionString: this.options.url, connectionTimeoutMillis: 5_000, keepAlive: true });
    let failed = false;
    const retry = (error: Error) => {
      if (failed) return;
      failed = true;
      if (this.listener === client) this.listener = undefined;
      client.removeAllListeners();
      client.on('error', () => undefined);
      void client.end().catch(() => undefined);
      if (this.stopped) return;
      const delay = backoffDelay({ baseMs: 250, maxMs: 10_000 }, this.listenAttempt++);
      this.deps.log.debug({ err: error, retryInMs: delay }, 'routing change listener lost; reconnecting');
      this.reconnectTimer = setTimeout(() => this.listen(), delay);
      this.reconnectTimer.unref();
    };
    client.on('error', retry);
    client.on('end', () => retry(new Error('listener connection ended')));
    client.on('notification', () => {
      this.notifications += 1;
      this.requestReload();
    });
    client
      .connect()
      .then(() => client.query(`LISTEN ${ROUTING_CHANGED_CHANNEL}`))
      .then(() => {
        this.listener = client;
        this.listenAttempt = 0;
        // Changes made while we were not listening are only seen by a full reload.
        this.requestReload();
      })
      .catch(retry);
  }
}

/**
 * Hands back the previous object for every row that did not change, so the renderer (which
 * caches by row object) re-validates and re-renders only the rows that did.
 */
export function reuseUnchanged(previous: readonly RoutingRow[] | undefined, next: RoutingRow[]): RoutingRow[] {
  if (previous === undefined || previous.length === 0) return next;
  const byId = new Map(previous.map((row) => [row.id, row]));
  return next.map((row) => {
    const old = byId.get(row.id);
    return old !== undefined && sameRow(old, row) ? old : row;
  });
}

const FIELDS = ['deployment_id', 'domain', 'service_name', 'path_prefix', 'target_port', 'protocol', 'ssl_enabled', 'ssl_cert_resolver', 'load_balancer_algo'] as const;

function sameRow(a: RoutingRow, b: RoutingRow): boolean {
  for (const field of FIELDS) if (a[field] !== b[field]) return false;
  if (a.middleware === b.middleware) return true;
  // jsonb comes back with its keys in a canonical order, so equal documents stringify equally.
  return JSON.stringify(a.middleware) === JSON.stringify(b.middleware);
}
