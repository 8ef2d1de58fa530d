/**
 * The optional Redis connection (REDIS_URL: one server, or a master behind Sentinel; see
 * redis-target.ts). ioredis reconnects by itself, and with Sentinel follows a failover; this wires
 * its state to the health registry. Redis is never critical: without it the service runs
 * single-instance.
 */
import type { Logger } from '../lib/logger.js';
import { Redis, type RedisOptions } from 'ioredis';
import { describeRedisTarget, parseRedisTarget } from './redis-target.js';
import type { HealthRegistry } from '../health/index.js';
import { backoffDelay } from '../lib/backoff.js';

export const REDIS = 'redis';

export function createRedis(url: string, deps: { health: HealthRegistry; log: Logger }, name = 'swarm-edge'): Redis {
  const options: RedisOptions = {
    connectionName: name,
    lazyConnect: true,
    connectTimeout: 5_000,
    // Fail commands fast while disconnected instead of queueing them without bound.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => backoffDelay({ baseMs: 200, maxMs: 10_000 }, attempt),
    // A master demoted by a failover answers writes with READONLY: reconnect, to the new master.
    reconnectOnError: (error) => error.message.startsWith('READONLY'),
  };
  const target = parseRedisTarget(url);
  const redis =
    target.kind === 'server'
      ? new Redis(target.url, options)
      : new Redis({
          ...options,
          sentinels: target.sentinels.map((s) => ({ host: s.host, port: s.port })),
          name: target.name,
          db: target.db,
          ...(target.username !== undefined ? { username: target.username } : {}),
          ...(target.password !== undefined ? { password: target.password } : {}),
          ...(target.sentinelPassword !== undefined ? { sentinelPassword: target.sentinelPassword } : {}),
          sentinelRetryStrategy: (attempt) => backoffDelay({ baseMs: 200, maxMs: 10_000 }, attempt),
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
