export { createRedis, REDIS } from './redis-connection.js';
