/**
 * The platform database as the rest of the service sees it: a pool, plus a background loop that
 * applies the migrations once PostgreSQL is reachable, then keeps checking it, reporting to the
 * health registry either way. The service starts and serves /health whether or not PostgreSQL is
 * up; the loops that need it ask isReady().
 */
import type { Logger } from '../lib/logger.js';
import type pg from 'pg';
import type { HealthRegistry } from '../health/index.js';
import { PeriodicJob } from '../lib/periodic-job.js';
import { migrate } from './migrate.js';
import { migrations } from './migrations.js';
import { createPool } from './pool.js';
import { PostgresEndpoint } from './postgres-endpoint.js';
import { errorMessage } from '../lib/errors.js';

export const POSTGRES = 'postgres';

export interface DatabaseOptions {
  readonly url: string;
  readonly probeIntervalMs?: number;
}

export class Database {
  readonly pool: pg.Pool;
  readonly endpoint: PostgresEndpoint;
  private migrated = false;
  private readonly probe: PeriodicJob;
  private readonly readyWaiters: Array<() => void> = [];

  constructor(
    options: DatabaseOptions,
    private readonly deps: { log: Logger; health: HealthRegistry },
  ) {
    deps.health.register(POSTGRES, { enabled: true });
    this.endpoint = new PostgresEndpoint(options.url, deps.log);
    this.pool = createPool({ connectionString: this.endpoint, applicationName: 'swarm-edge' }, deps.log, (error) =>
      deps.health.down(POSTGRES, error.message),
    );
    if (this.endpoint.primaryOnly) deps.health.addComponent('postgresHosts', () => this.endpoint.report());
    this.probe = new PeriodicJob({
      name: 'postgres-probe',
      intervalMs: options.probeIntervalMs ?? 5_000,
      // A probe is one query: retried often, so that a database back is seen within seconds.
      backoff: { baseMs: 250, maxMs: 5_000 },
      log: deps.log,
      run: () => this.check(),
    });
  }

  start(): void {
    this.probe.start();
  }

  /** True once the schema is in place and the last check reached PostgreSQL. */
  isReady(): boolean {
    return this.migrated && this.deps.health.isUp(POSTGRES);
  }

  /** Resolves once the migrations have been applied (used by tests and start-up ordering). */
  whenMigrated(): Promise<void> {
    if (this.migrated) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /** Called by users of the pool when a query fails for a connection reason, to recheck at once. */
  reportFailure(error: Error): void {
    this.deps.health.down(POSTGRES, error.message);
    this.endpoint.forgetPrimary();
    this.probe.trigger();
  }

  /** Something else just reached PostgreSQL again (the LISTEN connection): check now, not at the backoff. */
  recheck(): void {
    if (!this.deps.health.isUp(POSTGRES)) this.probe.trigger({ urgent: true });
  }

  async close(): Promise<void> {
    await this.probe.stop();
    await this.pool.end();
  }

  private async check(): Promise<void> {
    try {
      if (!this.migrated) {
        const result = await migrate(this.pool, migrations);
        this.migrated = true;
        this.deps.log.info({ applied: result.applied, schemaVersion: result.current }, 'database schema is up to date');
        for (const resolve of this.readyWaiters.splice(0)) resolve();
      } else {
        await this.checkConnection();
      }
      this.deps.health.up(POSTGRES);
    } catch (error) {
      this.deps.health.down(POSTGRES, errorMessage(error));
      throw error;
    }
  }

  /**
   * One pooled connection, checked by the endpoint. A primary demoted in place (not restarted)
   * keeps the pool's connections open but read-only: the probe's connection is dropped from the
   * pool when that happens, and each of the others at its first failed write, so new connections
   * go to the new primary.
   */
  private async checkConnection(): Promise<void> {
    const client = await this.pool.connect();
    let failure: Error | undefined;
    try {
      if (!(await this.endpoint.serves(client)))
        failure = new Error('connected to a read-only server (a demoted primary)');
    } catch (error) {
      failure = error as Error;
      this.endpoint.forgetPrimary();
    }
    client.release(failure);
    if (failure) throw failure;
  }
}
