import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** A free TCP port on 127.0.0.1 (listen on 0, read it back, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (typeof address !== 'object' || address === null) return reject(new Error('no address'));
      server.close(() => resolve(address.port));
    });
  });
}

export interface Spawned {
  readonly child: ChildProcess;
  /** Everything the process wrote to stdout and stderr, for error messages. */
  output(): string;
  exited(): boolean;
  waitExit(timeoutMs: number): Promise<boolean>;
}

export function spawnLogged(command: string, args: readonly string[], options: SpawnOptions = {}): Spawned {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  let output = '';
  const keep = (chunk: Buffer) => {
    output += chunk.toString();
    if (output.length > 200_000) output = output.slice(-100_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let done = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((done = true), resolve())));
  child.on('error', (error) => (output += `\nspawn error: ${error.message}`));
  return {
    child,
    output: () => output,
    exited: () => done,
    waitExit: async (timeoutMs) => {
      const timer = sleep(timeoutMs).then(() => false);
      return Promise.race([exit.then(() => true), timer]);
    },
  };
}

/**
 * Polls `check` until it returns true, or fails with `what`, the last error and, when given, what
 * `explain` tells of the state at that moment (so that a failure in CI can be read after the fact).
 */
export async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 30_000,
  everyMs = 100,
  explain?: () => Promise<string>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      lastError = error;
    }
    await sleep(everyMs);
  }
  const detail = lastError instanceof Error ? `: ${lastError.message}` : '';
  const state =
    explain === undefined ? '' : `\n${await explain().catch((error: unknown) => `(explain failed: ${String(error)})`)}`;
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}${state}`);
}

/** Stops a process politely, then firmly. */
export async function terminate(spawned: Spawned, timeoutMs = 15_000): Promise<void> {
  if (spawned.exited()) return;
  spawned.child.kill('SIGTERM');
  if (await spawned.waitExit(timeoutMs)) return;
  spawned.child.kill('SIGKILL');
  await spawned.waitExit(5_000);
}
