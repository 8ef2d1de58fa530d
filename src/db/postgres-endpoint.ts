/**
 * One PostgreSQL URL (one host, or several with the primary found among them) turned into
 * node-postgres clients and pools. With one host and no `target_session_attrs`, plain clients:
 * exactly what node-postgres does with the URL.
 */
import pg from 'pg';
import type { Logger } from '../lib/logger.js';
import { parsePostgresTarget, type PostgresTarget } from './postgres-target.js';
import { isWritable, PrimaryLocator, primaryClientClass } from './primary-locator.js';

export class PostgresEndpoint {
  readonly target: PostgresTarget;
  private readonly locator: PrimaryLocator | undefined;
  private readonly Client: typeof pg.Client;

  constructor(url: string, log: Logger) {
    this.target = parsePostgresTarget(url);
    this.locator = this.target.primaryOnly ? new PrimaryLocator(this.target, { log }) : undefined;
    this.Client = this.locator ? primaryClientClass(this.locator) : pg.Client;
  }

  /** What pg.Pool or pg.Client needs to reach the server (with `Client` for a pool). */
  connection(): { connectionString: string; Client: typeof pg.Client } {
    return { connectionString: this.target.urlFor(this.target.hosts[0]!), Client: this.Client };
  }

  /** A client of its own (the LISTEN connection), on the primary when there are several hosts. */
  newClient(config: Omit<pg.ClientConfig, 'connectionString'>): pg.Client {
    return new this.Client({ ...config, connectionString: this.connection().connectionString });
  }

  /** Whether connections must land on a writable server (several hosts, or target_session_attrs). */
  get primaryOnly(): boolean {
    return this.target.primaryOnly;
  }

  /**
   * Called after a failover, when connections first reach a new primary: stores write their recent
   * rows again (see recent-writes.ts). Never called with one host and no target_session_attrs.
   */
  onPrimaryMove(listener: () => void): void {
    this.locator?.onMove(() => listener());
  }

  /**
   * Whether an open connection is still on a server this endpoint wants: alive, and writable when
   * it wants the primary. A demoted primary answers no, and the primary is then looked for again.
   */
  async serves(client: Pick<pg.ClientBase, 'query'>): Promise<boolean> {
    if (!this.primaryOnly) {
      await client.query('SELECT 1');
      return true;
    }
    if (await isWritable(client)) return true;
    this.forgetPrimary();
    return false;
  }

  /** The primary last found stopped taking writes: look again at the next connection. */
  forgetPrimary(): void {
    this.locator?.forget();
  }

  report(): { hosts: string[]; primary: string | null; primaryMoves: number } | undefined {
    return this.locator?.report();
  }
}
