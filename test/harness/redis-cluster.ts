/**
 * A throwaway Redis Cluster on loopback ports: three masters and three replicas
 * (`redis-server --cluster-enabled yes`, joined by `redis-cli --cluster create`), each with its
 * own node file in a temporary directory. `failOverSlotOf(key)` kills the master that serves the
 * key's slot, as a crashed server would; its replica takes over (node timeout 1 s).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort, spawnLogged, terminate, waitFor, type Spawned } from './processes.js';
import { pingRedis, redisServerArgs } from './redis.js';

const run = promisify(execFile);

export interface TestRedisCluster {
  /** REDIS_URL of the cluster: redis+cluster://127.0.0.1:p1,… (every node). */
  readonly url: string;
  /** The port of the master serving `key`'s slot now. */
  masterOf(key: string): Promise<number>;
  /** Kills the master serving `key`'s slot and waits until a replica serves it; returns its port. */
  failOverSlotOf(key: string): Promise<number>;
  destroy(): Promise<void>;
}

export async function startRedisCluster(): Promise<TestRedisCluster> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'swarm-edge-redis-cluster-'));
  const processes = new Map<number, Spawned>();
  const ports: number[] = [];
  for (let i = 0; i < 6; i++) {
    const port = await freePort();
    ports.push(port);
    processes.set(
      port,
      spawnLogged(
        'redis-server',
        redisServerArgs(port, [
          '--dir',
          dir,
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          `nodes-${port}.conf`,
          '--cluster-node-timeout',
          '1000',
        ]),
      ),
    );
  }
  for (const port of ports) await waitFor('redis to answer', () => pingRedis(port), 15_000, 100);
  await run('redis-cli', [
    '--cluster',
    'create',
    ...ports.map((p) => `127.0.0.1:${p}`),
    '--cluster-replicas',
    '1',
    '--cluster-yes',
  ]);
  const live = () => ports.filter((p) => processes.has(p));
  const ask = async <T>(port: number, ...args: string[]): Promise<T> => {
    const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0, lazyConnect: true });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return (await client.call(args[0]!, ...args.slice(1))) as T;
    } finally {
      client.disconnect();
    }
  };
  const clusterOk = async () => {
    for (const port of live()) {
      const info = await ask<string>(port, 'CLUSTER', 'INFO');
      if (!info.includes('cluster_state:ok')) return false;
    }
    return true;
  };
  await waitFor('the cluster to be ok on every node', clusterOk, 30_000, 200);
  // A replica that has not synced yet would not stand for election (its data too old).
  await waitFor(
    'every replica in sync',
    async () => {
      let synced = 0;
      for (const port of ports) {
        const info = await ask<string>(port, 'INFO', 'replication');
        if (info.includes('role:slave') && info.includes('master_link_status:up')) synced += 1;
      }
      return synced === 3;
    },
    30_000,
    200,
  );

  const masterOf = async (key: string): Promise<number> => {
    const slot = await ask<number>(live()[0]!, 'CLUSTER', 'KEYSLOT', key);
    // CLUSTER SLOTS: [start, end, [ip, port, id], replicas…] per range.
    const ranges = await ask<Array<[number, number, [string, number]]>>(live()[0]!, 'CLUSTER', 'SLOTS');
    const range = ranges.find(([start, end]) => slot >= start && slot <= end);
    if (!range) throw new Error(`no node serves slot ${slot}`);
    return Number(range[2][1]);
  };
  return {
    url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`,
    masterOf,
    async failOverSlotOf(key) {
      const before = await masterOf(key);
      const master = processes.get(before)!;
      master.child.kill('SIGKILL');
      await master.waitExit(5_000);
      processes.delete(before);
      let after = before;
      try {
        await waitFor(
          'a replica to take the slot over',
          async () => {
            after = await masterOf(key);
            return after !== before && (await clusterOk());
          },
          60_000,
          200,
        );
      } catch (error) {
        const logs = [...processes].map(([port, p]) => `--- ${port}\n${p.output().slice(-1500)}`).join('\n');
        throw new Error(`${(error as Error).message}\n${logs}`);
      }
      return after;
    },
    async destroy() {
      for (const spawned of processes.values()) await terminate(spawned).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
