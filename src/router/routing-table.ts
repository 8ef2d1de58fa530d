/**
 * The deployment_routing table as the router sees it: loaded in full at start, on every change
 * notification (the table's trigger NOTIFYs; see db/migrations.ts), after every reconnect of the
 * listening connection, and on the resync tick. A failed load keeps the last good rows and says
 * so: the router never publishes from a table it could not read.
 */
import type { Logger } from '../lib/logger.js';
import type pg from 'pg';
import { isConnectionError, ROUTING_CHANGED_CHANNEL, type PostgresEndpoint } from '../db/index.js';
import { errorMessage } from '../lib/errors.js';
import { backoffDelay } from '../lib/backoff.js';
import { jsonEqual, type JsonLimits } from '../lib/json-bounds.js';
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
  /** True when the middleware document was over MAX_MIDDLEWARE_BYTES (and `middleware` is null). */
  readonly middleware_oversized?: unknown;
  /** created_at in ms since epoch: the older of two rows that claim the same host keeps it. */
  readonly created_ms?: unknown;
  /** Share of a split (rows with the same host and path, all weighted); null: not split. */
  readonly weight?: unknown;
  /** TCP and UDP routes: the Traefik entry point asked for (from the operator's allow-list). */
  readonly entry_point?: unknown;
  /** TCP routes with ssl_enabled: pass TLS through to the deployment instead of terminating it. */
  readonly tls_passthrough?: unknown;
  /** A shadow: the percentage of the requests of the route holding its host and path it gets a copy of. */
  readonly mirror_percent?: unknown;
}

/** Larger middleware documents are refused in the query, before they reach this process. */
export const MAX_MIDDLEWARE_BYTES = 65_536;
/** Text columns are cut to this in the query: every valid value is far shorter. */
const MAX_TEXT = 1024;
/** Far beyond any valid middleware document (see route-validation.ts), far below the stack's limit. */
export const MIDDLEWARE_JSON_LIMITS: JsonLimits = { maxDepth: 32, maxNodes: 20_000 };

export type RowsListener = (rows: readonly RoutingRow[], causedAt: number) => void;

const text = (column: string) => `left(${column}::text, ${MAX_TEXT}) AS ${column}`;
const SELECT_ROWS = `SELECT id::text AS id, ${text('deployment_id')}, ${text('domain')}, ${text('service_name')},
  ${text('path_prefix')}, target_port, ${text('protocol')}, ssl_enabled, ${text('ssl_cert_resolver')},
  ${text('load_balancer_algo')},
  CASE WHEN octet_length(middleware::text) <= ${MAX_MIDDLEWARE_BYTES} THEN middleware END AS middleware,
  coalesce(octet_length(middleware::text) > ${MAX_MIDDLEWARE_BYTES}, false) AS middleware_oversized,
  (extract(epoch FROM created_at) * 1000)::float8 AS created_ms, weight, ${text('entry_point')}, tls_passthrough,
  mirror_percent
  FROM deployment_routing ORDER BY id COLLATE "C"`;

export interface RoutingTableHealth {
  up(name: string): void;
  down(name: string, detail: string): void;
}

/** The routing table's own entry in /health: readable, or failing with the query's error. */
export const ROUTING_TABLE = 'routing_table';

export class RoutingTable {
  private rows: readonly RoutingRow[] | undefined;
  private listener: pg.Client | undefined;
  private listenAttempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private stopped = true;
  private pendingCause: number | undefined;
  private readonly loader: PeriodicJob;
  private readonly listeners: RowsListener[] = [];
  private lastError: string | undefined;
  private failingSince: number | undefined;
  private loads = 0;
  private notifications = 0;

  constructor(
    private readonly options: {
      resyncMs: number;
      /** How often the LISTEN connection is checked (alive, and on the primary). */
      listenCheckMs?: number;
    },
    private readonly deps: {
      pool: Pick<pg.Pool, 'query'>;
      /** Where LISTEN connects: DATABASE_LISTEN_URL, or DATABASE_URL. */
      listenEndpoint: Pick<PostgresEndpoint, 'newClient' | 'serves'>;
      isDatabaseReady: () => boolean;
      /** Called when a load failed because the connection is gone (not for query errors). */
      onConnectionFailure: (error: Error) => void;
      /** Called when the LISTEN connection is back after losing it: the database is reachable. */
      onListenRestored?: () => void;
      health: RoutingTableHealth;
      log: Logger;
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
    return {
      loaded: this.rows !== undefined,
      rows: this.rows?.length ?? 0,
      loads: this.loads,
      notifications: this.notifications,
      lastError: this.lastError ?? null,
      failingSince: this.failingSince === undefined ? null : new Date(this.failingSince).toISOString(),
      listening: this.listener !== undefined,
    };
  }

  start(): void {
    this.stopped = false;
    this.loader.start();
    this.listen();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.heartbeat) clearInterval(this.heartbeat);
    await this.loader.stop();
    await this.listener?.end().catch(() => undefined);
    this.listener = undefined;
  }

  /**
   * Asks for a reload now (coalesced with any reload already queued). A reload that failed keeps
   * its backoff unless `urgent` (the database just came back).
   */
  requestReload(causedAt = performance.now(), options: { urgent?: boolean } = {}): void {
    this.pendingCause = Math.min(this.pendingCause ?? causedAt, causedAt);
    this.loader.trigger(options);
  }

  private async load(): Promise<void> {
    if (!this.deps.isDatabaseReady()) {
      this.failed('the database is not reachable');
      throw new Error('database not ready');
    }
    const causedAt = this.pendingCause ?? performance.now();
    this.pendingCause = undefined;
    try {
      const result = await this.deps.pool.query<RoutingRow>(SELECT_ROWS);
      this.rows = reuseUnchanged(this.rows, result.rows);
      this.loads += 1;
      this.lastError = undefined;
      this.failingSince = undefined;
      this.deps.health.up(ROUTING_TABLE);
    } catch (error) {
      this.pendingCause ??= causedAt;
      if (isConnectionError(error)) {
        this.failed(`the database is not reachable: ${errorMessage(error)}`);
        this.deps.onConnectionFailure(error as Error);
      } else {
        this.failed(`cannot read deployment_routing: ${errorMessage(error)}`);
      }
      throw error;
    }
    for (const listener of this.listeners) listener(this.rows, causedAt);
  }

  private failed(reason: string): void {
    this.lastError = reason;
    this.failingSince ??= Date.now();
    this.deps.health.down(ROUTING_TABLE, `${reason}; publishing the last rows read with the live swarm`);
  }

  // A dedicated connection outside the pool: LISTEN lives as long as the session. NOTIFY reaches
  // only sessions on the primary, so after a failover the connection must move: it fails when the
  // old primary dies or restarts, and the heartbeat catches one demoted in place or cut off.
  private listen(): void {
    if (this.stopped) return;
    const endpoint = this.deps.listenEndpoint;
    const client = endpoint.newClient({
      connectionTimeoutMillis: 5_000,
      query_timeout: 5_000,
      keepAlive: true,
      application_name: 'swarm-edge-listen',
    });
    let failed = false;
    const retry = (error: Error) => {
      if (failed) return;
      failed = true;
      if (this.heartbeat) clearInterval(this.heartbeat);
      this.heartbeat = undefined;
      if (this.listener === client) this.listener = undefined;
      client.removeAllListeners();
      client.on('error', () => undefined);
      void client.end().catch(() => undefined);
      if (this.stopped) return;
      // Capped low: after a failover, the first attempt that reaches the new primary brings the
      // table back (see onListenRestored); one connection retrying every 2 s costs nothing.
      const delay = backoffDelay({ baseMs: 250, maxMs: 2_000 }, this.listenAttempt++);
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
        if (this.listenAttempt > 0) this.deps.onListenRestored?.();
        this.listenAttempt = 0;
        this.heartbeat = setInterval(() => {
          endpoint.serves(client).then(
            (served) => {
              if (!served) retry(new Error('the listening connection is on a read-only server (a demoted primary)'));
            },
            (error: Error) => retry(error),
          );
        }, this.options.listenCheckMs ?? 5_000);
        this.heartbeat.unref();
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

const FIELDS = [
  'deployment_id',
  'domain',
  'service_name',
  'path_prefix',
  'target_port',
  'protocol',
  'ssl_enabled',
  'ssl_cert_resolver',
  'load_balancer_algo',
  'middleware_oversized',
  'created_ms',
  'weight',
  'entry_point',
  'tls_passthrough',
  'mirror_percent',
] as const;

/**
 * Every column but the key and the middleware document (compared as JSON) is compared: a column
 * added to RoutingRow and not to FIELDS fails to compile here, instead of leaving a changed row
 * unpublished.
 */
type Uncompared = Exclude<keyof RoutingRow, (typeof FIELDS)[number] | 'id' | 'middleware'>;
const EVERY_COLUMN_COMPARED: [Uncompared] extends [never] ? true : Uncompared = true;
void EVERY_COLUMN_COMPARED;

function sameRow(a: RoutingRow, b: RoutingRow): boolean {
  for (const field of FIELDS) if (a[field] !== b[field]) return false;
  // Iterative and bounded: a document past the limits compares unequal and is validated (and
  // refused) again, which costs one row, never the table.
  return jsonEqual(a.middleware, b.middleware, MIDDLEWARE_JSON_LIMITS);
}
