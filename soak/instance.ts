/**
 * One instance of the service as an operator runs it: its own node process (so it can be sent
 * SIGKILL and SIGTERM), its own port and Traefik directory, its log kept in a file. Every exit the
 * soak did not ask for is a crash.
 */
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { spawnLogged, waitFor, type Spawned } from '../test/harness/index.js';
import { ROUTES_FILE } from '../src/router/index.js';

const ROOT = path.resolve(import.meta.dirname, '..');

export interface Lifetime {
  /** The feed's instance id of this process (the `from` of its Redis messages). */
  instanceId: string | undefined;
  readonly startedAt: number;
  endedAt: number | undefined;
  /** How it ended: killed, terminated (exit code), crashed, or still running. */
  end: 'running' | 'sigkill' | 'sigterm' | 'crash';
  exitCode: number | null;
  peakRssBytes: number;
  droppedRows: number;
}

export interface HealthBody {
  status: 'ok' | 'degraded' | 'unavailable';
  dependencies: Record<string, { status: string; detail?: string }>;
}

export class ServiceInstance {
  readonly lifetimes: Lifetime[] = [];
  readonly dynamicDir: string;
  private proc: Spawned | undefined;
  private log: WriteStream;
  private expectingExit = false;

  constructor(
    readonly name: string,
    readonly port: number,
    private readonly env: Record<string, string>,
    dir: string,
  ) {
    this.dynamicDir = path.join(dir, `traefik-${name}`);
    this.log = createWriteStream(path.join(dir, `${name}.log`), { flags: 'a' });
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get file(): string {
    return path.join(this.dynamicDir, ROUTES_FILE);
  }

  get pid(): number | undefined {
    return this.proc?.child.pid;
  }

  get running(): boolean {
    return this.proc !== undefined && !this.proc.exited();
  }

  current(): Lifetime | undefined {
    const last = this.lifetimes.at(-1);
    return last?.end === 'running' ? last : undefined;
  }

  start(): void {
    this.expectingExit = false;
    const proc = spawnLogged(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/main.ts')], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/root',
        HOST: '127.0.0.1',
        PORT: String(this.port),
        TRAEFIK_DYNAMIC_DIR: this.dynamicDir,
        ...this.env,
      },
    });
    this.proc = proc;
    const lifetime: Lifetime = {
      instanceId: undefined,
      startedAt: Date.now(),
      endedAt: undefined,
      end: 'running',
      exitCode: null,
      peakRssBytes: 0,
      droppedRows: 0,
    };
    this.lifetimes.push(lifetime);
    this.log.write(`\n=== ${new Date().toISOString()} start ===\n`);
    proc.child.stdout?.pipe(this.log, { end: false });
    proc.child.stderr?.pipe(this.log, { end: false });
    proc.child.once('exit', (code) => {
      lifetime.endedAt ??= Date.now();
      lifetime.exitCode = code;
      if (!this.expectingExit) lifetime.end = 'crash';
    });
  }

  /** Waits until /health answers and the feed reports its instance id. */
  async ready(timeoutMs = 120_000): Promise<void> {
    const lifetime = this.lifetimes.at(-1)!;
    await waitFor(
      `${this.name} to serve /metrics/observability`,
      async () => {
        if (!this.running) throw new Error(`${this.name} exited:\n${this.proc?.output().slice(-3000) ?? ''}`);
        const response = await fetch(`${this.baseUrl}/metrics/observability`, { signal: AbortSignal.timeout(2000) });
        if (!response.ok) return false;
        const report = (await response.json()) as { feed?: { instanceId?: string } };
        lifetime.instanceId = report.feed?.instanceId;
        return lifetime.instanceId !== undefined;
      },
      timeoutMs,
      200,
    );
  }

  async health(): Promise<HealthBody | undefined> {
    try {
      const response = await fetch(`${this.baseUrl}/health`, { signal: AbortSignal.timeout(2000) });
      return (await response.json()) as HealthBody;
    } catch {
      return undefined;
    }
  }

  /** Reads the process's peak RSS and the store's dropped rows while it runs. */
  async sample(): Promise<void> {
    const lifetime = this.current();
    const pid = this.pid;
    if (!lifetime || pid === undefined) return;
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
      if (hwm) lifetime.peakRssBytes = Math.max(lifetime.peakRssBytes, Number(hwm[1]) * 1024);
      const response = await fetch(`${this.baseUrl}/metrics/observability`, { signal: AbortSignal.timeout(2000) });
      const report = (await response.json()) as { storage?: { droppedRows?: number } };
      lifetime.droppedRows = Math.max(lifetime.droppedRows, report.storage?.droppedRows ?? 0);
    } catch {
      // between lifetimes, or busy: the next sample will do
    }
  }

  async kill(): Promise<void> {
    await this.stopWith('SIGKILL', 10_000);
  }

  /** Freezes the process (SIGSTOP) for `ms`, as a stalled VM or a debugger would, then resumes it. */
  async pause(ms: number): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exited()) return;
    proc.child.kill('SIGSTOP');
    try {
      await new Promise((resolve) => setTimeout(resolve, ms));
    } finally {
      proc.child.kill('SIGCONT');
    }
  }

  /** The /health router component (publishing state, Redis lock). */
  async router(): Promise<{ redis?: { holder: boolean } | null } | undefined> {
    try {
      const response = await fetch(`${this.baseUrl}/health`, { signal: AbortSignal.timeout(2000) });
      return ((await response.json()) as { components?: { router?: { redis?: { holder: boolean } | null } } })
        .components?.router;
    } catch {
      return undefined;
    }
  }

  /** SIGTERM; resolves with the exit code (null if it had to be killed). */
  async terminate(timeoutMs = 40_000): Promise<number | null> {
    return this.stopWith('SIGTERM', timeoutMs);
  }

  private async stopWith(signal: 'SIGKILL' | 'SIGTERM', timeoutMs: number): Promise<number | null> {
    const proc = this.proc;
    const lifetime = this.current();
    if (!proc || proc.exited() || !lifetime) return null;
    await this.sample();
    this.expectingExit = true;
    lifetime.end = signal === 'SIGKILL' ? 'sigkill' : 'sigterm';
    lifetime.endedAt = Date.now();
    proc.child.kill(signal);
    if (!(await proc.waitExit(timeoutMs))) {
      proc.child.kill('SIGKILL');
      await proc.waitExit(5_000);
      return null;
    }
    return proc.child.exitCode;
  }

  output(): string {
    return this.proc?.output() ?? '';
  }

  close(): void {
    this.log.end();
  }
}
