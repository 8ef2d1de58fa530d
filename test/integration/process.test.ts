/** The service as an operator runs it: `node dist/main.js` (here through tsx, no build needed). */
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
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

    const health = async (port: number) =>
      (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as {
        dependencies: { postgres: { status: string; detail?: string } };
      };
    const embeddedEnv = (port: number, pgPort: number, dir = dataDir) => ({
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: dir,
      EMBEDDED_POSTGRES_PORT: String(pgPort),
      DOCKER_HOST: 'unix:///nonexistent/docker.sock',
    });
    const postmasterPid = (dir: string) =>
      Number(readFileSync(path.join(dir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0]);
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };

    it('listens at once and names the port when EMBEDDED_POSTGRES_PORT is taken, then starts once it is free', async () => {
      const dir = mkdtempSync('/tmp/swarm-edge-embedded-port-');
      const port = await freePort();
      const pgPort = await freePort();
      // It accepts (and holds) the connections the service's pool tries meanwhile.
      const held = new Set<Socket>();
      const squatter = createServer((socket) => held.add(socket));
      await new Promise<void>((resolve) => squatter.listen(pgPort, '127.0.0.1', resolve));
      const proc = runMain(embeddedEnv(port, pgPort, dir));
      try {
        await waitFor(
          '/health naming the taken port',
          async () => {
            if (proc.exited()) throw new Error(proc.output());
            return /EMBEDDED_POSTGRES_PORT \d+ is in use/.test((await health(port)).dependencies.postgres.detail ?? '');
          },
          60_000,
          250,
        );
        expect(proc.output()).toContain(`EMBEDDED_POSTGRES_PORT ${pgPort} is in use`);
        await new Promise<void>((resolve) => {
          squatter.close(() => resolve());
          for (const socket of held) socket.destroy();
        });
        await waitFor(
          'postgres up once the port is free',
          async () => (await health(port)).dependencies.postgres.status === 'up',
          60_000,
          250,
        );
      } finally {
        squatter.close();
        await terminate(proc);
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('stops the postmaster orphaned by a kill -9 and starts again; refuses a DATA_DIR a live instance uses', async () => {
      const dir = mkdtempSync('/tmp/swarm-edge-embedded-orphan-');
      const [port, pgPort, otherPort] = [await freePort(), await freePort(), await freePort()];
      const first = runMain(embeddedEnv(port, pgPort, dir));
      try {
        await waitFor(
          'first up',
          async () => (await health(port).catch(() => undefined))?.dependencies.postgres.status === 'up',
          60_000,
          250,
        );

        // A second process on the same data directory: named, not crashed.
        const second = runMain(embeddedEnv(otherPort, await freePort(), dir));
        try {
          await waitFor(
            'second says the data directory is in use',
            async () => {
              if (second.exited()) throw new Error(second.output());
              return /in use by a running PostgreSQL/.test(
                (await health(otherPort).catch(() => undefined))?.dependencies.postgres.detail ?? '',
              );
            },
            60_000,
            250,
          );
        } finally {
          await terminate(second);
        }

        const orphan = postmasterPid(dir);
        first.child.kill('SIGKILL');
        await first.waitExit(10_000);
        expect(alive(orphan)).toBe(true);
        const restarted = runMain(embeddedEnv(port, pgPort, dir));
        try {
          await waitFor(
            'restarted up',
            async () => {
              if (restarted.exited()) throw new Error(restarted.output());
              return (await health(port).catch(() => undefined))?.dependencies.postgres.status === 'up';
            },
            90_000,
            250,
          );
          expect(restarted.output()).toContain('orphaned embedded PostgreSQL');
          expect(alive(orphan)).toBe(false);
          // SIGHUP is a shutdown like SIGTERM: exit 0, the embedded PostgreSQL stopped.
          const current = postmasterPid(dir);
          restarted.child.kill('SIGHUP');
          expect(await restarted.waitExit(30_000)).toBe(true);
          expect(restarted.child.exitCode).toBe(0);
          await waitFor('postmaster stopped', () => !alive(current), 10_000, 100);
        } finally {
          await terminate(restarted);
        }
      } finally {
        await terminate(first);
        await rm(dir, { recursive: true, force: true });
      }
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
