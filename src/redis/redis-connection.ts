/**
 * The optional Redis connection (REDIS_URL). ioredis reconnects by itself; this wires its state to
 * the health registry. Redis is never critical: without it the service runs single-instance.
 */
import type { Logger } from '../lib/logger.js';
import { Redis } from 'ioredis';
import type { HealthRegistry } from '../health/index.js';
import { backoffDelay } from '../lib/backoff.js';

export const REDIS = 'redis';

export function createRedis(url: string, deps: { health: HealthRegistry; log: Logger }, name = 'swarm-edge'): Redis {
  const redis = new Redis(url, {
    connectionName: name,
    lazyConnect: true,
    connectTimeout: 5_000,
    // Fail commands fast while disconnected instead of queueing them without bound.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => backoffDelay({ baseMs: 200, maxMs: 10_000 }, attempt),
  });
  redis.on('ready', () => deps.health.up(REDIS));
  redis.on('error', (error: Error) => {
    deps.log.debug({ err: error }, 'redis error');
    deps.health.down(REDIS, error.message);
  });
  redis.on('end', () => deps.health.down(REDIS, 'connection closed'));
  return redis;
}
