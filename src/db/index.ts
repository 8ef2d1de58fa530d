export { Database, POSTGRES } from './database.js';
export type { DatabaseOptions } from './database.js';
export { prepareEmbeddedPostgres } from './embedded-postgres.js';
export type { EmbeddedPostgresHandle } from './embedded-postgres.js';
export { migrate } from './migrate.js';
export { migrations, ROUTING_CHANGED_CHANNEL } from './migrations.js';
export type { Migration } from './migrations.js';
export { createPool } from './pool.js';
export { isConnectionError } from './errors.js';
