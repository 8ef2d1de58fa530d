/**
 * Which deployment a Traefik service belongs to, by the router's own naming: the services this
 * service publishes are named `routeName(row)` (router/route-render.ts), and Traefik labels their
 * metrics `<name>@file`, `@http` or `@redis`. The directory reads the routing table's (id,
 * deployment_id) pairs and names them the same way, so the join is exact: no name is parsed, a
 * label matches a known name or it is unknown. Names of rows that went away are kept a while, so
 * a deleted route's last minutes still count for its deployment.
 */
import type pg from 'pg';
import { isIdentifier } from '../lib/identifiers.js';
import { routeName } from '../router/index.js';

/** The providers this service publishes through (Traefik's provider names). */
const PROVIDERS = new Set(['file', 'http', 'redis']);
const SELECT_ROUTES = `SELECT id::text AS id, deployment_id::text AS deployment_id FROM deployment_routing ORDER BY id COLLATE "C"`;

export interface DirectoryOptions {
  /** How long the name of a deleted row still maps to its deployment. */
  readonly keepRemovedMs: number;
}

export class ServiceDirectory {
  /** Route name → deployment, and when the name was last in the table. */
  private names = new Map<string, { deploymentId: string; seenAt: number }>();
  private refreshedAt: number | undefined;
  private refreshing: Promise<void> | undefined;
  private s = { refreshes: 0, refreshFailures: 0, rowsSkipped: 0 };

  constructor(
    private readonly options: DirectoryOptions,
    private readonly deps: { pool: Pick<pg.Pool, 'query'>; clock?: () => number },
  ) {}

  stats() {
    return { names: this.names.size, refreshedAt: this.refreshedAt, ...this.s };
  }

  get lastRefresh(): number | undefined {
    return this.refreshedAt;
  }

  /** The deployment of a Traefik `service` label value, or undefined. */
  deploymentOf(service: string): string | undefined {
    const at = service.lastIndexOf('@');
    if (at <= 0 || !PROVIDERS.has(service.slice(at + 1))) return undefined;
    return this.names.get(service.slice(0, at))?.deploymentId;
  }

  /** Re-reads the routing table (one read at a time). */
  refresh(): Promise<void> {
    this.refreshing ??= this.read().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async read(): Promise<void> {
    const now = (this.deps.clock ?? Date.now)();
    try {
      const { rows } = await this.deps.pool.query<{ id: string; deployment_id: string | null }>(SELECT_ROUTES);
      const names = new Map<string, { deploymentId: string; seenAt: number }>();
      let skipped = 0;
      for (const row of rows) {
        // The router refuses such rows, and publishes no service for them.
        if (!isIdentifier(row.deployment_id)) {
          skipped += 1;
          continue;
        }
        const name = routeName({ id: row.id, deploymentId: row.deployment_id });
        // Two rows of one name: the router keeps the first by id; so does the directory.
        if (!names.has(name)) names.set(name, { deploymentId: row.deployment_id, seenAt: now });
      }
      for (const [name, entry] of this.names)
        if (!names.has(name) && now - entry.seenAt < this.options.keepRemovedMs) names.set(name, entry);
      this.names = names;
      this.refreshedAt = now;
      this.s.refreshes += 1;
      this.s.rowsSkipped = skipped;
    } catch (error) {
      this.s.refreshFailures += 1;
      throw error;
    }
  }
}
