/** The service as an operator runs it: `node dist/main.js` (here through tsx, no build needed). */
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, missingTools, spawnLogged, terminate, waitFor } from '../harness/index.js';

const root = path.resolve(import.meta.dirname, '../..');
const main = path.join(root, 'src/main.ts');
const skip = missingTools(['root', 'postgres']);

function runMain(env: Record<string, string>) {
  return spawnLogged(process.execPath, ['--import', 'tsx', main], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env },
  });
}

describe('the service process', () => {
  it.each([
    ['PORT', 'abc'],
    ['EDGE_ROLES', 'nonsense'],
  ])('exits non-zero naming %s when it is %s', async (name, value) => {
    const proc = runMain({ [name]: value, DATABASE_URL: 'postgres://u:p@127.0.0.1:1/x' });
    expect(await proc.waitExit(30_000)).toBe(true);
    expect(proc.child.exitCode).not.toBe(0);
    expect(proc.output()).toContain(`${name}="${value}"`);
  });

  describe.skipIf(skip)('on the embedded default', () => {
    const dataDir = mkdtempSync('/tmp/swarm-edge-embedded-');
    afterAll(async () => {
      await rm(dataDir, { recursive: true, force: true });
    });

    it('starts with no DATABASE_URL, serves /health with postgres up, and exits 0 on SIGTERM', async () => {
      const port = await freePort();
      const pgPort = await freePort();
      const proc = runMain({
        PORT: String(port),
        HOST: '127.0.0.1',
        DATA_DIR: dataDir,
        EMBEDDED_POSTGRES_PORT: String(pgPort),
        DOCKER_HOST: 'unix:///nonexistent/docker.sock',
      });
      try {
        await waitFor(
          '/health with postgres up',
          async () => {
            if (proc.exited()) throw new Error(proc.output());
            const response = await fetch(`http://127.0.0.1:${port}/health`);
            const body = (await response.json()) as { dependencies: { postgres: { status: string } } };
            return body.dependencies.postgres.status === 'up';
          },
          60_000,
          250,
        );
        expect(proc.output()).toContain('running the embedded PostgreSQL');
        proc.child.kill('SIGTERM');
        expect(await proc.waitExit(30_000)).toBe(true);
        expect(proc.child.exitCode).toBe(0);
      } finally {
        await terminate(proc);
      }
    });
  });
});
