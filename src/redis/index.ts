export { createRedis, REDIS } from './redis-connection.js';
export { FeedBus, subscriberOf } from './feed-bus.js';
export type { Publication, RedisClient, RedisCommand } from './feed-bus.js';
