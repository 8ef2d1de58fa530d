/**
 * A throwaway PgBouncer in transaction pooling mode in front of a harness PostgreSQL, on a free
 * loopback port: the pooler whose mode breaks LISTEN and session state. As root it runs as the
 * `postgres` system user (PgBouncer refuses root).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { freePort, spawnLogged, terminate, waitFor } from './processes.js';
import { which } from './tools.js';

export interface TestPgBouncer {
  /** The URL of `database` through the pooler. */
  readonly url: string;
  destroy(): Promise<void>;
}

export async function startPgBouncer(upstream: { port: number }, database: string): Promise<TestPgBouncer> {
  const root = mkdtempSync('/tmp/swarm-edge-pgbouncer-');
  const port = await freePort();
  const asRoot = process.getuid?.() === 0;
  const ids = asRoot
    ? {
        uid: Number(execFileSync('id', ['-u', 'postgres']).toString().trim()),
        gid: Number(execFileSync('id', ['-g', 'postgres']).toString().trim()),
      }
    : {};
  writeFileSync(path.join(root, 'users.txt'), '"postgres" "test"\n');
  writeFileSync(
    path.join(root, 'pgbouncer.ini'),
    [
      '[databases]',
      `${database} = host=127.0.0.1 port=${upstream.port} dbname=${database}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = scram-sha-256',
      `auth_file = ${path.join(root, 'users.txt')}`,
      'pool_mode = transaction',
      'max_client_conn = 200',
      'default_pool_size = 10',
      // node-postgres sends these at start-up; a pooler in transaction mode cannot keep them.
      'ignore_startup_parameters = extra_float_digits,statement_timeout,options',
      '',
    ].join('\n'),
  );
  if (asRoot) {
    chmodSync(root, 0o755);
    for (const file of ['', 'users.txt', 'pgbouncer.ini']) chownSync(path.join(root, file), ids.uid!, ids.gid!);
  }
  const server = spawnLogged(which('pgbouncer')!, [path.join(root, 'pgbouncer.ini')], { cwd: root, ...ids });
  await waitFor(
    'pgbouncer to listen',
    () =>
      new Promise<boolean>((resolve, reject) => {
        if (server.exited()) reject(new Error(`pgbouncer exited:\n${server.output().slice(-2000)}`));
        const socket = net.connect(port, '127.0.0.1', () => {
          socket.destroy();
          resolve(true);
        });
        socket.on('error', reject);
      }),
    15_000,
    100,
  );
  return {
    url: `postgres://postgres:test@127.0.0.1:${port}/${database}`,
    destroy: async () => {
      await terminate(server);
      await rm(root, { recursive: true, force: true });
    },
  };
}
