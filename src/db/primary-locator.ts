/**
 * Finds the primary among several PostgreSQL hosts, as libpq does with
 * `target_session_attrs=read-write`, for node-postgres, which takes one host only.
 *
 * The primary found is kept until a connection to it fails or finds it read-only (a failover
 * demoted it); the next connection then asks every host at once and takes the writable one. Every
 * new connection checks that it reached a writable server, so a stale answer costs one failed
 * connection, never a write to a standby.
 */
import pg from 'pg';
import type { Logger } from '../lib/logger.js';
import { errorMessage } from '../lib/errors.js';
import { describeHost, type PostgresHost, type PostgresTarget } from './postgres-target.js';

/** What a probe of one host found, for the log and /health. */
interface Probe {
  readonly host: PostgresHost;
  readonly role: 'primary' | 'standby' | 'unreachable';
  readonly detail?: string;
}

const WRITABLE_SQL = `SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off' AS writable`;

/** Whether the server behind this open connection takes writes. */
export async function isWritable(client: Pick<pg.ClientBase, 'query'>): Promise<boolean> {
  const result = await client.query<{ writable: boolean }>(WRITABLE_SQL);
  return result.rows[0]?.writable === true;
}

export class PrimaryLocator {
  private known: PostgresHost | undefined;
  private last: PostgresHost | undefined;
  private locating: Promise<PostgresHost> | undefined;
  private moves = 0;
  private readonly moveListeners: Array<(to: PostgresHost) => void> = [];

  constructor(
    private readonly target: PostgresTarget,
    private readonly deps: { log: Logger; probeTimeoutMs?: number },
  ) {}

  /** The primary: the one last found, or found now by probing every host in parallel. */
  primary(): Promise<PostgresHost> {
    if (this.known) return Promise.resolve(this.known);
    this.locating ??= this.locate().finally(() => {
      this.locating = undefined;
    });
    return this.locating;
  }

  /** Called each time the primary is found on another host than before (a failover). */
  onMove(listener: (to: PostgresHost) => void): void {
    this.moveListeners.push(listener);
  }

  /**
   * The host (by default, the one known) failed or turned read-only: the next connection looks for
   * the primary again.
   */
  forget(host: PostgresHost | undefined = this.known): void {
    if (this.known === host) this.known = undefined;
  }

  report(): { hosts: string[]; primary: string | null; primaryMoves: number } {
    return {
      hosts: this.target.hosts.map(describeHost),
      primary: this.known ? describeHost(this.known) : null,
      primaryMoves: this.moves,
    };
  }

  private async locate(): Promise<PostgresHost> {
    const probes = await Promise.all(this.target.hosts.map((host) => this.probe(host)));
    const writable = probes.filter((probe) => probe.role === 'primary');
    if (writable.length === 0)
      throw new Error(
        `no writable PostgreSQL primary among ${probes.map((p) => `${describeHost(p.host)} (${p.detail ?? p.role})`).join(', ')}`,
      );
    // Two writable servers is a split brain the cluster manager has to settle; the first listed wins.
    if (writable.length > 1)
      this.deps.log.warn(
        { writable: writable.map((p) => describeHost(p.host)) },
        'several PostgreSQL hosts take writes',
      );
    const found = writable[0]!.host;
    // Hosts are the target's own objects: the same host is the same object.
    if (this.last !== undefined && this.last !== found) {
      this.moves += 1;
      this.deps.log.warn(
        { from: describeHost(this.last), to: describeHost(found) },
        `PostgreSQL primary moved to ${describeHost(found)}`,
      );
      for (const listener of this.moveListeners) listener(found);
    } else if (this.last === undefined)
      this.deps.log.info({ primary: describeHost(found) }, 'PostgreSQL primary found');
    this.known = found;
    this.last = found;
    return found;
  }

  private async probe(host: PostgresHost): Promise<Probe> {
    const timeoutMs = this.deps.probeTimeoutMs ?? 2_000;
    const client = new pg.Client({
      connectionString: this.target.urlFor(host),
      connectionTimeoutMillis: timeoutMs,
      query_timeout: timeoutMs,
      application_name: 'swarm-edge-probe',
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return { host, role: (await isWritable(client)) ? 'primary' : 'standby' };
    } catch (error) {
      return { host, role: 'unreachable', detail: errorMessage(error).slice(0, 200) };
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

/**
 * A node-postgres Client that connects to the locator's primary, and fails (forgetting it) when
 * the server it reached does not take writes. For pg.Pool's `Client` option and the LISTEN
 * connection.
 */
export function primaryClientClass(locator: PrimaryLocator): typeof pg.Client {
  class PrimaryClient extends pg.Client {
    override connect(): Promise<pg.Client>;
    override connect(callback: ((error: Error) => void) | ((error: null, client: pg.Client) => void)): void;
    override connect(
      callback?: ((error: Error) => void) | ((error: null, client: pg.Client) => void),
    ): Promise<pg.Client> | void {
      const connected = this.connectToPrimary().then(() => this);
      if (!callback) return connected;
      const done = callback as (error: Error | null, client?: pg.Client) => void;
      connected.then(
        (client) => done(null, client),
        (error: Error) => done(error),
      );
    }

    private async connectToPrimary(): Promise<void> {
      const host = await locator.primary();
      // node-postgres reads these when it opens the socket (and for TLS's server name).
      const parameters = (this as unknown as { connectionParameters: { host: string; port: number } })
        .connectionParameters;
      this.host = parameters.host = host.host;
      this.port = parameters.port = host.port;
      this.on('error', () => locator.forget(host));
      try {
        await super.connect();
      } catch (error) {
        locator.forget(host);
        throw error;
      }
      const writable = await isWritable(this).catch(() => false);
      if (!writable) {
        locator.forget(host);
        await this.end().catch(() => undefined);
        throw new Error(`${describeHost(host)} no longer takes writes (a standby now); looking for the primary again`);
      }
    }
  }
  return PrimaryClient;
}
