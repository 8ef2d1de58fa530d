/**
 * The faults the soak injects, each one done and undone: it returns once the broken thing is
 * back (dockerd answering, PostgreSQL accepting, the instance serving). Recovery — the service
 * healthy again — is measured by the caller from that moment.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Cluster } from './cluster.js';
import type { ServiceInstance } from './instance.js';

export interface FaultContext {
  readonly cluster: Cluster;
  readonly instances: readonly ServiceInstance[];
  /** How long a dependency stays away (a flush interval and more). */
  readonly outageMs: number;
  /** How long the metrics database stays slow: over a minute, so that a finished window meets it. */
  readonly slowMs: number;
  /** Exit codes of SIGTERMed instances (must be 0). */
  readonly termExitCodes: Array<number | null>;
}

export interface Fault {
  readonly name: string;
  /** What it breaks. */
  readonly affects: 'docker' | 'postgres' | 'metrics-db' | 'redis' | 'instance';
  /** The /health dependency that must report it while it lasts, if any. */
  readonly dependency?: string;
  run(ctx: FaultContext): Promise<void>;
}

/** Stops one of the harness's servers for `ms`, then starts it again on the same state and port. */
async function outage(server: { stop(): Promise<void>; start(): Promise<void> }, ms: number): Promise<void> {
  await server.stop();
  await sleep(ms);
  await server.start();
}

export const FAULTS: readonly Fault[] = [
  {
    name: 'dockerd restarted (SIGTERM, start)',
    affects: 'docker',
    dependency: 'docker',
    run: async ({ cluster }) => {
      await cluster.swarm.restart();
    },
  },
  {
    name: 'PostgreSQL stopped, then started',
    affects: 'postgres',
    dependency: 'postgres',
    run: ({ cluster, outageMs }) => outage(cluster.postgres, outageMs),
  },
  {
    name: 'Redis stopped, then started',
    affects: 'redis',
    dependency: 'redis',
    run: ({ cluster, outageMs }) => outage(cluster.redis, outageMs),
  },
  {
    name: 'instance a SIGKILLed, then started',
    affects: 'instance',
    run: async ({ instances }) => {
      const a = instances[0]!;
      await a.kill();
      await sleep(2_000);
      a.start();
      await a.ready();
    },
  },
  {
    name: 'metrics database of instance a slow (statements sleep past the timeout)',
    affects: 'metrics-db',
    dependency: 'metrics',
    run: async ({ cluster, slowMs }) => {
      // Every insert into container_metrics sleeps 15 s, past the store's 10 s statement timeout.
      const client = new pg.Client({ connectionString: cluster.metricsUrls.get('a') });
      await client.connect();
      try {
        await client.query(`CREATE OR REPLACE FUNCTION soak_slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(15); RETURN NULL; END $$`);
        await client.query(`CREATE TRIGGER soak_slow BEFORE INSERT ON container_metrics FOR EACH STATEMENT EXECUTE FUNCTION soak_slow()`);
        await sleep(slowMs);
        await client.query(`DROP TRIGGER soak_slow ON container_metrics`);
      } finally {
        await client.end();
      }
    },
  },
  {
    name: 'instance b sent SIGTERM, then started',
    affects: 'instance',
    run: async ({ instances, termExitCodes }) => {
      const b = instances[1]!;
      termExitCodes.push(await b.terminate());
      b.start();
      await b.ready();
    },
  },
  {
    name: 'dockerd SIGKILLed, then started',
    affects: 'docker',
    dependency: 'docker',
    run: async ({ cluster }) => {
      await cluster.swarm.kill();
      await sleep(3_000);
      await cluster.swarm.start();
    },
  },
];
