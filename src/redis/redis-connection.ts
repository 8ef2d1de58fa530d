/**
 * The optional Redis connection (REDIS_URL: one server, a master behind Sentinel, or a cluster;
 * see redis-target.ts). ioredis reconnects by itself, with Sentinel follows a failover, and on a
 * cluster follows slots to the replica promoted in a master's place; this wires
 * its state to the health registry. Redis is never critical: without it the service runs
 * single-instance.
 */
import type { Logger } from '../lib/logger.js';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisClient } from './feed-bus.js';
import { describeRedisTarget, parseRedisTarget } from './redis-target.js';
import type { HealthRegistry } from '../health/index.js';
import { backoffDelay } from '../lib/backoff.js';

export const REDIS = 'redis';

export function createRedis(
  url: string,
  deps: { health: HealthRegistry; log: Logger },
  name = 'swarm-edge',
): RedisClient {
  // What each connection to a server has, on its own or as a node of a cluster.
  const perServer: RedisOptions = { connectionName: name, connectTimeout: 5_000, maxRetriesPerRequest: 1 };
  const retry = (attempt: number) => backoffDelay({ baseMs: 200, maxMs: 10_000 }, attempt);
  const options: RedisOptions = {
    ...perServer,
    lazyConnect: true,
    // Fail commands fast while disconnected instead of queueing them without bound.
    enableOfflineQueue: false,
    retryStrategy: retry,
    // A master demoted by a failover answers writes with READONLY: reconnect, to the new master.
    reconnectOnError: (error) => error.message.startsWith('READONLY'),
  };
  const target = parseRedisTarget(url);
  const credentials = (t: { username: string | undefined; password: string | undefined }) => ({
    ...(t.username !== undefined ? { username: t.username } : {}),
    ...(t.password !== undefined ? { password: t.password } : {}),
  });
  const redis: RedisClient =
    target.kind === 'server'
      ? new Redis(target.url, options)
      : target.kind === 'cluster'
        ? new Cluster(
            target.nodes.map((node) => ({ host: node.host, port: node.port })),
            {
              lazyConnect: true,
              enableOfflineQueue: false,
              // Commands made in one tick go to each node in one round trip (the feed's writes).
              enableAutoPipelining: true,
              // SSUBSCRIBE on the shard of each channel's slot, followed when slots move.
              shardedSubscribers: true,
              clusterRetryStrategy: retry,
              redisOptions: { ...perServer, ...credentials(target) },
            },
          )
        : new Redis({
            ...options,
            sentinels: target.sentinels.map((s) => ({ host: s.host, port: s.port })),
            name: target.name,
            db: target.db,
            ...credentials(target),
            ...(target.sentinelPassword !== undefined ? { sentinelPassword: target.sentinelPassword } : {}),
            sentinelRetryStrategy: retry,
            // Reconnect as soon as the sentinels announce a new master, not at the next error.
            failoverDetector: true,
          });
  redis.on('ready', () => {
    deps.health.up(REDIS);
    deps.log.debug({ redis: describeRedisTarget(target) }, 'redis ready');
  });
  redis.on('error', (error: Error) => {
    deps.log.debug({ err: error }, 'redis error');
    deps.health.down(REDIS, error.message);
  });
  redis.on('end', () => deps.health.down(REDIS, 'connection closed'));
  return redis;
}
