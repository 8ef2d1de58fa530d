/**
 * The Dockerfile's runtime stage, verified without a registry: no node base image can be pulled
 * here, so this builds the same stage from what the machine has. It takes the node binary and its
 * shared libraries, the service compiled as the build stage does, and production dependencies
 * only. The image is imported into the harness dockerd with the runtime stage's own USER,
 * WORKDIR, ENV and CMD, read from the Dockerfile. Then it checks that:
 * - the entry point starts as the unprivileged user;
 * - the HEALTHCHECK command passes against /health;
 * - `docker stop` (SIGTERM to PID 1) ends the process with status 0, well before the kill timeout.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  freePort,
  missingTools,
  startPostgres,
  startSwarm,
  waitFor,
  type TestPostgres,
  type TestSwarm,
} from '../harness/index.js';

const skip = missingTools(['root', 'dockerd', 'docker', 'busybox', 'postgres']);
const repo = path.resolve(import.meta.dirname, '../..');
const IMAGE = 'swarm-edge-runtime:test';

/** The runtime stage's instructions that `docker import --change` understands, and its HEALTHCHECK command. */
function runtimeStage(): { changes: string[]; healthcheck: string[] } {
  const dockerfile = readFileSync(path.join(repo, 'Dockerfile'), 'utf8').replace(/\\\n\s*/g, ' ');
  const stage = dockerfile.slice(dockerfile.indexOf(' AS runtime'));
  const changes = stage.split('\n').filter((line) => /^(ENV|WORKDIR|USER|CMD|EXPOSE) /.test(line));
  const health = /^HEALTHCHECK .*?CMD (\[.*\])\s*$/m.exec(stage);
  if (!health || !changes.some((c) => c.startsWith('CMD ')))
    throw new Error('Dockerfile runtime stage has no CMD or HEALTHCHECK');
  return { changes, healthcheck: JSON.parse(health[1]!) as string[] };
}

function rootfs(dir: string): void {
  const app = path.join(dir, 'app');
  mkdirSync(app, { recursive: true });
  // Build stage: the Dockerfile's own `npm run build` (compile, then the dashboard's files), then
  // production dependencies only.
  execFileSync('npm', ['run', 'build'], { cwd: repo, stdio: 'pipe' });
  cpSync(path.join(repo, 'dist'), path.join(app, 'dist'), { recursive: true });
  for (const file of ['package.json', 'package-lock.json']) copyFileSync(path.join(repo, file), path.join(app, file));
  execFileSync('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: app, stdio: 'pipe' });
  rmSync(path.join(app, 'package-lock.json'));
  // Base image: node and the libraries it links against, a passwd with the image's `node` user.
  const node = process.execPath;
  const libraries = execFileSync('ldd', [node], { encoding: 'utf8' })
    .split('\n')
    .map((l) => /(\/\S+) \(/.exec(l)?.[1])
    .filter((l): l is string => l !== undefined);
  for (const file of [node, ...libraries]) {
    const target = path.join(dir, file === node ? '/usr/local/bin/node' : file);
    mkdirSync(path.dirname(target), { recursive: true });
    cpSync(file, target, { dereference: true });
  }
  mkdirSync(path.join(dir, 'etc'), { recursive: true });
  mkdirSync(path.join(dir, 'tmp'), { recursive: true, mode: 0o1777 });
  writeFileSync(
    path.join(dir, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/false\nnode:x:1000:1000::/home/node:/bin/false\n',
  );
  writeFileSync(path.join(dir, 'etc/group'), 'root:x:0:\nnode:x:1000:\n');
  mkdirSync(path.join(dir, 'home/node'), { recursive: true });
  execFileSync('chown', ['-R', '1000:1000', path.join(dir, 'home/node'), app]);
}

describe.skipIf(skip)('the container image (runtime stage)', () => {
  let swarm: TestSwarm;
  let postgres: TestPostgres;
  const work = mkdtempSync('/tmp/swarm-edge-image-');

  beforeAll(async () => {
    [swarm, postgres] = await Promise.all([startSwarm(), startPostgres()]);
    const fs = path.join(work, 'rootfs');
    rootfs(fs);
    const tarball = path.join(work, 'rootfs.tar');
    execFileSync('tar', ['-C', fs, '-cf', tarball, '.']);
    const { changes } = runtimeStage();
    await swarm.cli([
      'import',
      ...changes.flatMap((c) => ['-c', c]),
      '-c',
      'ENV PATH=/usr/local/bin:/usr/bin:/bin',
      tarball,
      IMAGE,
    ]);
  }, 300_000);
  afterAll(async () => {
    await swarm?.destroy();
    await postgres?.destroy();
    rmSync(work, { recursive: true, force: true });
  });

  it('starts unprivileged, passes its HEALTHCHECK, and exits 0 on docker stop', async () => {
    const port = await freePort();
    const { healthcheck } = runtimeStage();
    const id = (
      await swarm.cli([
        'run',
        '-d',
        '--network',
        'host',
        // The socket's group, as the README advises, instead of running as root.
        '--group-add',
        String(execFileSync('stat', ['-c', '%g', swarm.socketPath], { encoding: 'utf8' }).trim()),
        '-v',
        `${swarm.socketPath}:/var/run/docker.sock:ro`,
        '-e',
        'HOST=127.0.0.1',
        '-e',
        `PORT=${port}`,
        '-e',
        `DATABASE_URL=${postgres.url}`,
        '-e',
        'EDGE_ROLES=metrics',
        '-e',
        'STATS_SOURCE=docker',
        '-e',
        'FEED_AUTH=none',
        IMAGE,
      ])
    ).trim();
    await waitFor(
      '/health 200 from the container',
      async () => (await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined))?.status === 200,
      60_000,
      250,
    );

    // The dashboard and its charting library are in the image, served from it.
    for (const asset of ['/ui', '/ui/assets/dashboard.js', '/ui/assets/uPlot.iife.min.js'])
      expect([asset, (await fetch(`http://127.0.0.1:${port}${asset}`)).status]).toEqual([asset, 200]);

    const pid = (await swarm.cli(['inspect', '-f', '{{.State.Pid}}', id])).trim();
    expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^Uid:\s+1000\s/m);
    // The Dockerfile's HEALTHCHECK command, run in the container as Docker would.
    await swarm.cli(['exec', id, ...healthcheck]);

    const started = Date.now();
    await swarm.cli(['stop', '-t', '20', id]);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect((await swarm.cli(['inspect', '-f', '{{.State.ExitCode}}', id])).trim()).toBe('0');
  });
});
