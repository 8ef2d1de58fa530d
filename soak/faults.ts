/**
 * The faults the soak injects, each one done and undone: it returns once the broken thing is
 * back (dockerd answering, PostgreSQL accepting, the instance serving). Recovery — the service
 * healthy again — is measured by the caller from that moment.
 */
import { execFileSync } from 'node:child_process';
import { statfsSync } from 'node:fs';
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
  readonly affects: 'docker' | 'postgres' | 'metrics-db' | 'redis' | 'instance' | 'disk';
  /** The /health dependency that must report it while it lasts, if any. */
  readonly dependency?: string;
  run(ctx: FaultContext): Promise<void>;
}

/** The size of instance a's routes directory (a tmpfs mounted by the soak, see mountRoutesTmpfs). */
const ROUTES_TMPFS_SIZE = '64m';

/** Instance a's routes directory on its own small filesystem, so that the disk-full fault can fill it. */
export function mountRoutesTmpfs(directory: string): void {
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${ROUTES_TMPFS_SIZE}`, 'tmpfs', directory]);
}

export function unmountRoutesTmpfs(directory: string): void {
  try {
    execFileSync('umount', ['-l', directory]);
  } catch {
    // not mounted (the soak stopped before)
  }
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
    name: 'PostgreSQL primary SIGKILLed, standby promoted (failover), new standby cloned',
    affects: 'postgres',
    dependency: 'postgres',
    run: ({ cluster }) => cluster.postgres.failover(),
  },
  {
    name: 'Redis master SIGKILLed, replica promoted by Sentinel (failover), old master back as a replica',
    affects: 'redis',
    dependency: 'redis',
    run: async ({ cluster }) => {
      await cluster.redis.failOver({ crash: true, rejoin: true });
    },
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
      const client = new pg.Client({ connectionString: cluster.postgres.primaryUrl('metrics_a') });
      await client.connect();
      try {
        await client.query(
          `CREATE OR REPLACE FUNCTION soak_slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(15); RETURN NULL; END $$`,
        );
        await client.query(
          `CREATE TRIGGER soak_slow BEFORE INSERT ON container_metrics FOR EACH STATEMENT EXECUTE FUNCTION soak_slow()`,
        );
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
    name: 'routes directory of instance a full (its tmpfs shrunk to what it holds), then grown',
    affects: 'disk',
    dependency: 'routes',
    run: async ({ instances, outageMs }) => {
      const directory = instances[0]!.dynamicDir;
      const stats = statfsSync(directory);
      const used = (stats.blocks - stats.bfree) * stats.bsize;
      // Room for what is there and a page more: the next publish's staged copy cannot fit.
      execFileSync('mount', ['-o', `remount,size=${used + 4096}`, directory]);
      try {
        await sleep(outageMs);
      } finally {
        execFileSync('mount', ['-o', `remount,size=${ROUTES_TMPFS_SIZE}`, directory]);
      }
    },
  },
  {
    name: 'the Redis publisher lock holder paused (SIGSTOP) past the lock TTL, then resumed',
    affects: 'instance',
    run: async ({ instances }) => {
      const routers = await Promise.all(instances.map((instance) => instance.router()));
      const holder = instances[routers.findIndex((router) => router?.redis?.holder === true)] ?? instances[1]!;
      // The lock's TTL is 15 s: the other router takes over and publishes while this one sleeps;
      // when it wakes, whatever write it had under way must be refused.
      await holder.pause(20_000);
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
