/**
 * A throwaway PostgreSQL from Debian's binaries on a free loopback port, with stop/start/kill for
 * fault tests. As root it runs as the `postgres` system user (PostgreSQL refuses root).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { freePort, spawnLogged, terminate, waitFor, type Spawned } from './processes.js';
import { POSTGRES_BIN } from './tools.js';

export interface TestPostgres {
  readonly port: number;
  /** URL of a database of its own, for one test file. */
  readonly url: string;
  stop(): Promise<void>;
  kill(): Promise<void>;
  start(): Promise<void>;
  /** A client for the test's own setup and assertions (connects and ends per call). */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
  /** Creates another empty database on the same server and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /**
   * A streaming standby of this server (pg_basebackup -R), on a port of its own (or `port`, a
   * dead server's, to take its place in a host list), with the same databases.
   */
  startStandby(options?: { port?: number }): Promise<TestStandby>;
  destroy(): Promise<void>;
}

export interface TestStandby extends TestPostgres {
  /** Ends recovery: the standby becomes a primary (what a failover manager does). */
  promote(): Promise<void>;
}

export interface PostgresOptions {
  /** shared_preload_libraries, e.g. ['timescaledb'] for the opt-in TimescaleDB suite. */
  readonly preload?: readonly string[];
}

export async function startPostgres(options: PostgresOptions = {}): Promise<TestPostgres> {
  const { root, ids } = makeRoot();
  const dataDir = path.join(root, 'data');
  const pwFile = path.join(root, 'pw');
  writeFileSync(pwFile, 'test\n', { mode: 0o644 });
  execFileSync(
    path.join(POSTGRES_BIN, 'initdb'),
    [
      '-D',
      dataDir,
      '-U',
      'postgres',
      '--pwfile',
      pwFile,
      '-A',
      'scram-sha-256',
      '--no-sync',
      '-E',
      'UTF8',
      '--locale',
      'C',
    ],
    { stdio: 'pipe', cwd: root, ...ids },
  );
  const server = await runServer(root, dataDir, ids, options);
  await server.createDatabase('swarm_edge_test');
  return server;
}

function makeRoot(): { root: string; ids: { uid?: number; gid?: number } } {
  const root = mkdtempSync('/tmp/swarm-edge-postgres-');
  // Spawned directly as the postgres user (not through runuser) so signals reach the postmaster.
  if (process.getuid?.() !== 0) return { root, ids: {} };
  const ids = {
    uid: Number(execFileSync('id', ['-u', 'postgres']).toString().trim()),
    gid: Number(execFileSync('id', ['-g', 'postgres']).toString().trim()),
  };
  chmodSync(root, 0o755);
  chownSync(root, ids.uid, ids.gid);
  return { root, ids };
}

async function runServer(
  root: string,
  dataDir: string,
  ids: { uid?: number; gid?: number },
  options: PostgresOptions,
  fixedPort?: number,
): Promise<TestPostgres> {
  const port = fixedPort ?? (await freePort());
  let server: Spawned | undefined;
  const admin = `postgres://postgres:test@127.0.0.1:${port}/postgres`;
  const dbUrl = `postgres://postgres:test@127.0.0.1:${port}/swarm_edge_test`;
  const start = async () => {
    server = spawnLogged(
      path.join(POSTGRES_BIN, 'postgres'),
      [
        '-D',
        dataDir,
        '-p',
        String(port),
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        `unix_socket_directories=${root}`,
        '-c',
        'fsync=off',
        '-c',
        'synchronous_commit=off',
        '-c',
        'full_page_writes=off',
        '-c',
        'max_connections=200',
        ...(options.preload?.length ? ['-c', `shared_preload_libraries=${options.preload.join(',')}`] : []),
      ],
      { cwd: root, ...ids },
    );
    const current = server;
    await waitFor(
      'postgres to accept connections',
      async () => {
        if (current.exited()) throw new Error(`postgres exited:\n${current.output().slice(-2000)}`);
        const client = new pg.Client({ connectionString: admin, connectionTimeoutMillis: 1000 });
        await client.connect();
        await client.end();
        return true;
      },
      30_000,
      100,
    );
  };
  const query = async <R extends pg.QueryResultRow>(sql: string, params?: unknown[], url = dbUrl) => {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
    await client.connect();
    try {
      return await client.query<R>(sql, params);
    } finally {
      await client.end();
    }
  };
  const createDatabase = async (name: string) => {
    await query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`, [], admin);
    return `postgres://postgres:test@127.0.0.1:${port}/${name}`;
  };
  // SIGINT is PostgreSQL's fast shutdown; SIGTERM would wait for every client to leave.
  const stop = async () => {
    if (!server || server.exited()) return;
    server.child.kill('SIGINT');
    if (!(await server.waitExit(20_000))) await terminate(server);
  };
  const startStandby = async (standbyOptions: { port?: number } = {}): Promise<TestStandby> => {
    const standby = makeRoot();
    const standbyData = path.join(standby.root, 'data');
    execFileSync(
      path.join(POSTGRES_BIN, 'pg_basebackup'),
      [
        '-h',
        '127.0.0.1',
        '-p',
        String(port),
        '-U',
        'postgres',
        '-D',
        standbyData,
        '-R',
        '-X',
        'stream',
        '--no-sync',
        '--checkpoint=fast',
      ],
      { stdio: 'pipe', cwd: standby.root, env: { ...process.env, PGPASSWORD: 'test' }, ...standby.ids },
    );
    const replica = await runServer(standby.root, standbyData, standby.ids, options, standbyOptions.port);
    return {
      ...replica,
      promote: async () => {
        await replica.query('SELECT pg_promote(true, 30)');
      },
    };
  };

  await start();
  return {
    port,
    url: dbUrl,
    start,
    stop,
    kill: async () => {
      if (!server) return;
      server.child.kill('SIGKILL');
      await server.waitExit(5000);
    },
    query: (sql, params) => query(sql, params),
    createDatabase,
    startStandby,
    destroy: async () => {
      await stop();
      await rm(root, { recursive: true, force: true });
    },
  };
}
