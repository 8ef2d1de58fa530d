/**
 * A throwaway Sentinel topology on loopback ports: a master, a replica and three sentinels
 * (`redis-server --sentinel`, quorum 2), each with its own config file in a temporary directory.
 * `failOver()` stops the current master's process, as a crashed server would; the sentinels
 * promote the replica.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { freePort, spawnLogged, terminate, waitFor, type Spawned } from './processes.js';
import { pingRedis, redisServerArgs } from './redis.js';

export const SENTINEL_MASTER = 'edge-master';

export interface TestSentinel {
  /** REDIS_URL of the topology: redis+sentinel://…/edge-master. */
  readonly url: string;
  /** ioredis options that follow the master through the sentinels (for a test's own clients). */
  readonly clientOptions: { sentinels: Array<{ host: string; port: number }>; name: string };
  /** The port of the server that is master now, as the sentinels see it. */
  masterPort(): Promise<number>;
  /**
   * Kills the current master (SIGTERM, or SIGKILL with `crash`) and waits until the sentinels name
   * another one; with `rejoin`, starts the old master again, which the sentinels turn into a
   * replica of the new one. Returns the new master's port.
   */
  failOver(options?: { crash?: boolean; rejoin?: boolean }): Promise<number>;
  destroy(): Promise<void>;
}

export async function startRedisSentinel(): Promise<TestSentinel> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'swarm-edge-sentinel-'));
  const processes = new Map<number, Spawned>();
  const serverArgs = new Map<number, string[]>();
  const server = async (port: number, extra: string[]) => {
    serverArgs.set(port, extra);
    // A replica's first sync writes an RDB file: into the topology's directory, not the cwd.
    const spawned = spawnLogged('redis-server', redisServerArgs(port, ['--dir', dir, ...extra]));
    processes.set(port, spawned);
    await waitFor('redis to answer', () => pingRedis(port), 15_000, 100);
  };
  const masterPort = await freePort();
  const replicaPort = await freePort();
  await server(masterPort, []);
  await server(replicaPort, ['--replicaof', '127.0.0.1', String(masterPort)]);
  const sentinelPorts: number[] = [];
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    const file = path.join(dir, `sentinel-${port}.conf`);
    writeFileSync(
      file,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `sentinel monitor ${SENTINEL_MASTER} 127.0.0.1 ${masterPort} 2`,
        `sentinel down-after-milliseconds ${SENTINEL_MASTER} 1000`,
        `sentinel failover-timeout ${SENTINEL_MASTER} 10000`,
        `sentinel parallel-syncs ${SENTINEL_MASTER} 1`,
        '',
      ].join('\n'),
    );
    processes.set(port, spawnLogged('redis-server', [file, '--sentinel']));
    sentinelPorts.push(port);
    await waitFor('sentinel to answer', () => pingRedis(port), 15_000, 100);
  }
  const askSentinel = async (): Promise<number> => {
    const client = new Redis({ port: sentinelPorts[0]!, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    client.on('error', () => undefined);
    try {
      const [, port] = (await client.call('SENTINEL', 'get-master-addr-by-name', SENTINEL_MASTER)) as [string, string];
      return Number(port);
    } finally {
      client.disconnect();
    }
  };
  // The replica has synced and every sentinel knows the others: a failover can happen.
  await waitFor(
    'sentinels ready',
    async () => {
      const client = new Redis({ port: sentinelPorts[0]!, host: '127.0.0.1', maxRetriesPerRequest: 0 });
      client.on('error', () => undefined);
      try {
        const master = (await client.call('SENTINEL', 'master', SENTINEL_MASTER)) as string[];
        const field = (name: string) => Number(master[master.indexOf(name) + 1]);
        return field('num-other-sentinels') === 2 && field('num-slaves') === 1;
      } finally {
        client.disconnect();
      }
    },
    30_000,
    200,
  );
  return {
    url: `redis+sentinel://${sentinelPorts.map((p) => `127.0.0.1:${p}`).join(',')}/${SENTINEL_MASTER}`,
    masterPort: askSentinel,
    clientOptions: { sentinels: sentinelPorts.map((port) => ({ host: '127.0.0.1', port })), name: SENTINEL_MASTER },
    async failOver(options = {}) {
      const before = await askSentinel();
      const master = processes.get(before)!;
      if (options.crash) {
        master.child.kill('SIGKILL');
        await master.waitExit(5_000);
      } else await terminate(master);
      processes.delete(before);
      let after = before;
      await waitFor(
        'a new master',
        async () => {
          after = await askSentinel();
          return after !== before;
        },
        60_000,
        200,
      );
      // Empty (no persistence): the sentinels make it a replica of the new master, which it syncs.
      if (options.rejoin) await server(before, serverArgs.get(before)!);
      return after;
    },
    async destroy() {
      for (const spawned of processes.values()) await terminate(spawned).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
