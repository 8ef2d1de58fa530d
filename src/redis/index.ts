export { createRedis, REDIS } from './redis-connection.js';
export { FeedBus } from './feed-bus.js';
export type { Publication, RedisClient, RedisCommand } from './feed-bus.js';
