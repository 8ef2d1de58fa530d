/**
 * What buildApp builds once and hands to every role plugin: the database, Docker, Redis, the
 * health registry and the telemetry. Registered before the roles, so fastify closes them last.
 */
import type Docker from 'dockerode';
import type { Config } from './config.js';
import type { Database } from './db/index.js';
import type { HealthRegistry } from './health/index.js';
import type { RedisClient } from './redis/index.js';
import type { StatsSource } from './metrics/index.js';
import type { Telemetry } from './telemetry/index.js';

export interface SharedParts {
  readonly config: Config;
  readonly database: Database;
  /** The URL the database was built from (the embedded one, when DATABASE_URL is unset). */
  readonly databaseUrl: string;
  readonly docker: Docker;
  /** One server or a Sentinel's master (a Redis), or a cluster. */
  readonly redis: RedisClient | undefined;
  readonly health: HealthRegistry;
  readonly telemetry: Telemetry;
  /** Tests replace the stats source; default: the one STATS_SOURCE selects. */
  readonly statsSource?: StatsSource;
}
