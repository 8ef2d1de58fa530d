/**
 * What the soak runs against: the test harness's real swarm, PostgreSQL and Redis (started here,
 * never someone else's), one routing database shared by both instances and one metrics database
 * per instance, so each instance's stored windows can be checked on their own.
 */
import {
  startPostgres,
  startRedis,
  startSwarm,
  type TestPostgres,
  type TestRedis,
  type TestSwarm,
} from '../test/harness/index.js';

export const NETWORK = 'soak-net';

export interface Cluster {
  readonly swarm: TestSwarm;
  readonly postgres: TestPostgres;
  readonly redis: TestRedis;
  /** deployment_routing and friends, shared by both instances. */
  readonly routingUrl: string;
  /** One metrics database per instance (same server): instance name → URL. */
  readonly metricsUrls: ReadonlyMap<string, string>;
  destroy(): Promise<void>;
}

export async function startCluster(instanceNames: readonly string[]): Promise<Cluster> {
  const [swarm, postgres, redis] = await Promise.all([startSwarm(), startPostgres(), startRedis()]);
  try {
    await swarm.cli(['network', 'create', '-d', 'overlay', '--attachable', NETWORK]);
    const metricsUrls = new Map<string, string>();
    for (const name of instanceNames) metricsUrls.set(name, await postgres.createDatabase(`metrics_${name}`));
    return {
      swarm,
      postgres,
      redis,
      routingUrl: postgres.url,
      metricsUrls,
      destroy: async () => {
        await Promise.all([swarm.destroy(), postgres.destroy(), redis.destroy()]);
      },
    };
  } catch (error) {
    await Promise.all([swarm.destroy(), postgres.destroy(), redis.destroy()]);
    throw error;
  }
}
