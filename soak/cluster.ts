/**
 * What the soak runs against: the test harness's real swarm, PostgreSQL and Redis (started here,
 * never someone else's), one routing database shared by both instances and one metrics database
 * per instance, so each instance's stored windows can be checked on their own.
 *
 * PostgreSQL is a primary and a streaming standby, and the service is given both hosts, as it
 * would be under Patroni: the failover fault kills the primary, promotes the standby, and builds
 * a new standby from it on the dead primary's port, so the host list stays true for the next one.
 * Redis is a master, a replica and three sentinels, given as redis+sentinel://: its fault kills the
 * master and lets the sentinels promote the replica. (A Redis Cluster has its own test: the soak
 * runs Traefik's Redis provider, which cannot read a cluster.)
 */
import {
  startPostgres,
  startSwarm,
  type TestPostgres,
  type TestStandby,
  type TestSwarm,
} from '../test/harness/index.js';
import { startRedisSentinel, type TestSentinel } from '../test/harness/redis-sentinel.js';

export const NETWORK = 'soak-net';

export interface Cluster {
  readonly swarm: TestSwarm;
  readonly postgres: PostgresPair;
  readonly redis: TestSentinel;
  /** deployment_routing and friends, shared by both instances (both hosts, libpq's form). */
  readonly routingUrl: string;
  /** One metrics database per instance (same servers): instance name → URL (both hosts). */
  readonly metricsUrls: ReadonlyMap<string, string>;
  destroy(): Promise<void>;
}

export class PostgresPair {
  constructor(
    private primary: TestPostgres,
    private standby: TestStandby,
  ) {}

  /** The service's URL of `database`: both hosts, the primary to be found. */
  url(database: string): string {
    return `postgres://postgres:test@127.0.0.1:${this.primary.port},127.0.0.1:${this.standby.port}/${database}?target_session_attrs=read-write`;
  }

  /** The current primary's own URL of `database`, for the soak's checks. */
  primaryUrl(database: string): string {
    return `postgres://postgres:test@127.0.0.1:${this.primary.port}/${database}`;
  }

  /** Stops the primary (fast shutdown): the standby waits for it and follows it again. */
  stop(): Promise<void> {
    return this.primary.stop();
  }

  start(): Promise<void> {
    return this.primary.start();
  }

  /**
   * The primary dies (SIGKILL), the standby is promoted, and a new standby is cloned from the new
   * primary on the dead one's port. Returns when the new primary takes writes.
   */
  async failover(): Promise<void> {
    const dead = this.primary;
    await dead.kill();
    await this.standby.promote();
    this.primary = this.standby;
    await dead.destroy();
    this.standby = await this.primary.startStandby({ port: dead.port });
  }

  async destroy(): Promise<void> {
    await this.standby.destroy();
    await this.primary.destroy();
  }
}

export async function startCluster(instanceNames: readonly string[]): Promise<Cluster> {
  const [swarm, primary, redis] = await Promise.all([startSwarm(), startPostgres(), startRedisSentinel()]);
  let postgres: PostgresPair | undefined;
  try {
    await swarm.cli(['network', 'create', '-d', 'overlay', '--attachable', NETWORK]);
    const databases = new Map<string, string>();
    for (const name of instanceNames) {
      await primary.createDatabase(`metrics_${name}`);
      databases.set(name, `metrics_${name}`);
    }
    postgres = new PostgresPair(primary, await primary.startStandby());
    const pair = postgres;
    return {
      swarm,
      postgres,
      redis,
      routingUrl: pair.url('swarm_edge_test'),
      metricsUrls: new Map([...databases].map(([name, database]) => [name, pair.url(database)])),
      destroy: async () => {
        await Promise.all([swarm.destroy(), pair.destroy(), redis.destroy()]);
      },
    };
  } catch (error) {
    await Promise.all([swarm.destroy(), postgres ? postgres.destroy() : primary.destroy(), redis.destroy()]);
    throw error;
  }
}
