/**
 * An isolated Docker daemon in swarm mode for the integration tests: its own socket, data root,
 * exec root, pid file, containerd namespace and cgroup parent, no iptables, no bridge, vfs storage,
 * a single-node swarm on a free loopback port, and a test image imported from Debian's
 * busybox-static (no registry needed). It never touches another daemon.
 */
import { execFile, execFileSync } from 'node:child_process';
import {
  existsSync,
  readFileSync,
  readdirSync,
  rmdirSync,
  rmSync,
  writeFileSync,
  mkdirSync,
  symlinkSync,
  copyFileSync,
  mkdtempSync,
} from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { freePort, spawnLogged, terminate, waitFor, type Spawned } from './processes.js';
import { which } from './tools.js';

const run = promisify(execFile);

export const TEST_IMAGE = 'swarm-edge-test:latest';

export interface TestSwarm {
  readonly root: string;
  readonly socketPath: string;
  readonly dockerHost: string;
  readonly docker: Docker;
  readonly image: string;
  readonly cgroupParent: string;
  /** Runs the docker CLI against this daemon and returns its stdout. */
  cli(args: readonly string[]): Promise<string>;
  /** Stops the daemon (SIGTERM), keeping its state. */
  stop(): Promise<void>;
  /** SIGKILLs the daemon, as a crash would. */
  kill(): Promise<void>;
  /** Starts a stopped or killed daemon again on the same state. */
  start(): Promise<void>;
  restart(): Promise<void>;
  /** Stops everything and deletes the state. */
  destroy(): Promise<void>;
}

export async function startSwarm(): Promise<TestSwarm> {
  const root = mkdtempSync('/tmp/swarm-edge-dockerd-');
  const id = path
    .basename(root)
    .replace(/[^a-zA-Z0-9]/g, '')
    .toLowerCase();
  const socketPath = path.join(root, 'docker.sock');
  const cgroupParent = `swarm-edge-test-${id}`;
  const args = [
    '-H',
    `unix://${socketPath}`,
    '--data-root',
    path.join(root, 'data'),
    '--exec-root',
    path.join(root, 'exec'),
    '--pidfile',
    path.join(root, 'docker.pid'),
    '--iptables=false',
    '--ip6tables=false',
    '--bridge=none',
    '--storage-driver=vfs',
    '--containerd-namespace',
    `swarm-edge-${id}`,
    '--containerd-plugins-namespace',
    `swarm-edge-${id}-plugins`,
    '--cgroup-parent',
    cgroupParent,
    '--log-level',
    'warn',
  ];
  const docker = new Docker({ socketPath });
  const dockerCli = which('docker') ?? 'docker';
  const cli = async (cliArgs: readonly string[]) =>
    (await run(dockerCli, ['-H', `unix://${socketPath}`, ...cliArgs], { maxBuffer: 64 * 1024 * 1024 })).stdout;

  let daemon: Spawned | undefined;
  const start = async () => {
    removeStaleContainerdPidfile(root);
    daemon = spawnLogged('dockerd', args, { detached: false });
    const current = daemon;
    await waitFor(
      'dockerd to answer',
      async () => {
        if (current.exited()) throw new Error(`dockerd exited:\n${current.output().slice(-2000)}`);
        await docker.ping();
        return true;
      },
      60_000,
      200,
    );
  };
  const stop = async () => {
    if (daemon) await terminate(daemon, 30_000);
  };
  const kill = async () => {
    if (!daemon) return;
    daemon.child.kill('SIGKILL');
    await daemon.waitExit(10_000);
  };

  const swarm: TestSwarm = {
    root,
    socketPath,
    dockerHost: `unix://${socketPath}`,
    docker,
    image: TEST_IMAGE,
    cgroupParent,
    cli,
    stop,
    kill,
    start,
    restart: async () => {
      await stop();
      await start();
      await waitFor(
        'the swarm to be active again',
        async () =>
          ((await docker.info()) as { Swarm?: { LocalNodeState?: string } }).Swarm?.LocalNodeState === 'active',
        60_000,
        250,
      );
    },
    destroy: async () => {
      await stop().catch(() => undefined);
      cleanupLeftovers(root, cgroupParent);
      await rm(root, { recursive: true, force: true }).catch(() => undefined);
    },
  };

  try {
    await start();
    const swarmPort = await freePort();
    const dataPathPort = await freePort();
    await cli([
      'swarm',
      'init',
      '--advertise-addr',
      '127.0.0.1',
      '--listen-addr',
      `127.0.0.1:${swarmPort}`,
      '--data-path-port',
      String(dataPathPort),
    ]);
    await importTestImage(root, cli);
  } catch (error) {
    await swarm.destroy();
    throw error;
  }
  return swarm;
}

/**
 * A root filesystem holding busybox (static) and a page to serve: `httpd` makes a fine upstream,
 * `sh`, `dd` and `yes` make CPU and disk load.
 */
async function importTestImage(root: string, cli: TestSwarm['cli']): Promise<void> {
  const rootfs = path.join(root, 'rootfs');
  for (const dir of ['bin', 'www', 'tmp', 'etc']) mkdirSync(path.join(rootfs, dir), { recursive: true });
  copyFileSync(which('busybox') ?? '/bin/busybox', path.join(rootfs, 'bin/busybox'));
  const applets = ['sh', 'httpd', 'sleep', 'cat', 'dd', 'yes', 'echo', 'ls', 'wget', 'sync', 'rm', 'seq', 'true'];
  for (const applet of applets) symlinkSync('busybox', path.join(rootfs, 'bin', applet));
  writeFileSync(path.join(rootfs, 'www/index.html'), 'swarm-edge test upstream\n');
  writeFileSync(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/:/bin/sh\n');
  const tarball = path.join(root, 'rootfs.tar');
  execFileSync('tar', ['-C', rootfs, '-cf', tarball, '.']);
  await cli(['import', '-c', 'CMD ["/bin/httpd","-f","-p","8080","-h","/www"]', tarball, TEST_IMAGE]);
}

/**
 * dockerd adopts the containerd named in exec/containerd/containerd.pid when that pid is alive. A
 * killed containerd can linger as a zombie (this machine's init reaps late), which looks alive:
 * dockerd then waits on it and gives up ("timeout waiting for containerd to start").
 */
function removeStaleContainerdPidfile(root: string): void {
  const pidfile = path.join(root, 'exec/containerd/containerd.pid');
  if (!existsSync(pidfile)) return;
  const pid = readFileSync(pidfile, 'utf8').trim();
  let live = false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    live =
      stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z' &&
      readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'containerd';
  } catch {
    live = false;
  }
  if (!live) rmSync(pidfile, { force: true });
}

/**
 * After dockerd is gone: kill what it may have left (containerd, shims, container processes in
 * our cgroup parent), unmount what is mounted under our root. Only things that carry our root
 * path or our cgroup parent are touched.
 */
function cleanupLeftovers(root: string, cgroupParent: string): void {
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmdline.includes(root)) process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone already
    }
  }
  for (const controller of ['pids', 'memory', 'cpu,cpuacct', 'unified', '']) {
    const dir = path.join('/sys/fs/cgroup', controller, cgroupParent);
    if (!existsSync(dir)) continue;
    for (const procs of findFiles(dir, 'cgroup.procs')) {
      for (const pid of readFileSync(procs, 'utf8').split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone already
        }
      }
    }
  }
  removeCgroupDirs(cgroupParent);
  const mounts = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .filter((mountPoint) => mountPoint.startsWith(root + '/'))
    .sort((a, b) => b.length - a.length);
  for (const mountPoint of mounts) {
    try {
      execFileSync('umount', ['-l', mountPoint], { stdio: 'ignore' });
    } catch {
      // already unmounted
    }
  }
}

/** Empty cgroup directories can only be removed with rmdir, deepest first. */
function removeCgroupDirs(cgroupParent: string): void {
  for (const controller of readdirSync('/sys/fs/cgroup')) {
    const dir = path.join('/sys/fs/cgroup', controller, cgroupParent);
    if (!existsSync(dir)) continue;
    const dirs = [dir, ...findDirs(dir)].sort((a, b) => b.length - a.length);
    for (const d of dirs) {
      try {
        rmdirSync(d);
      } catch {
        // still busy or already gone
      }
    }
  }
}

function findDirs(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .flatMap((e) => [path.join(dir, e.name), ...findDirs(path.join(dir, e.name))]);
}

function findFiles(dir: string, name: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...findFiles(full, name));
    else if (entry.name === name) found.push(full);
  }
  return found;
}
