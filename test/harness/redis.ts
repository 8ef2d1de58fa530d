/** A throwaway redis-server on a free loopback port, with stop/start for fault tests. */
import { Redis } from 'ioredis';
import { freePort, spawnLogged, terminate, waitFor, type Spawned } from './processes.js';

export interface TestRedis {
  readonly port: number;
  readonly url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

/** A loopback redis-server without persistence, with the keyspace events Traefik's Redis provider relies on. */
export function redisServerArgs(port: number, extra: readonly string[] = []): string[] {
  return [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--notify-keyspace-events',
    'KEA',
    ...extra,
  ];
}

/** Whether a Redis server (or sentinel) on a loopback port answers PING; throws while it cannot be reached. */
export async function pingRedis(port: number): Promise<boolean> {
  const client = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => undefined); // connect() rejects with the same error
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } finally {
    client.disconnect();
  }
}

export async function startRedis(): Promise<TestRedis> {
  const port = await freePort();
  let server: Spawned | undefined;
  const start = async () => {
    server = spawnLogged('redis-server', redisServerArgs(port));
    const current = server;
    await waitFor(
      'redis to answer',
      async () => {
        if (current.exited()) throw new Error(`redis exited:\n${current.output()}`);
        return pingRedis(port);
      },
      15_000,
      100,
    );
  };
  await start();
  const stop = async () => {
    if (server) await terminate(server);
  };
  return { port, url: `redis://127.0.0.1:${port}`, start, stop, destroy: stop };
}
