/**
 * What the integration tests need from the machine. Outside CI a missing tool skips the suite
 * with a loud reason; under CI=true it fails, because a suite that silently did not run proves
 * nothing.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const POSTGRES_BIN = process.env.SWARM_EDGE_PG_BIN ?? '/usr/lib/postgresql/15/bin';
export const CHROMIUM = process.env.SWARM_EDGE_CHROMIUM ?? '/usr/bin/chromium';

export function which(command: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

const checks: Record<string, () => string | undefined> = {
  dockerd: () => (which('dockerd') ? undefined : 'dockerd is not installed (apt-get install docker.io)'),
  docker: () => (which('docker') ? undefined : 'the docker CLI is not installed (apt-get install docker.io)'),
  busybox: () => (which('busybox') ? undefined : 'busybox is not installed (apt-get install busybox-static)'),
  root: () => (process.getuid?.() === 0 ? undefined : 'an isolated dockerd needs root'),
  'redis-server': () =>
    which('redis-server') ? undefined : 'redis-server is not installed (apt-get install redis-server)',
  postgres: () =>
    existsSync(`${POSTGRES_BIN}/postgres`)
      ? undefined
      : `PostgreSQL binaries not found in ${POSTGRES_BIN} (apt-get install postgresql-15)`,
  pgbouncer: () => (which('pgbouncer') ? undefined : 'pgbouncer is not installed (apt-get install pgbouncer)'),
  chromium: () => (existsSync(CHROMIUM) ? undefined : `Chromium not found at ${CHROMIUM} (apt-get install chromium)`),
};

export type Tool = 'dockerd' | 'docker' | 'busybox' | 'root' | 'redis-server' | 'postgres' | 'pgbouncer' | 'chromium';

/** Returns why the suite cannot run here, or undefined; throws under CI=true. */
export function missingTools(tools: readonly Tool[]): string | undefined {
  const problems = tools.map((t) => checks[t]?.()).filter((p): p is string => p !== undefined);
  if (problems.length === 0) return undefined;
  const reason = problems.join('; ');
  if (process.env.CI === 'true') throw new Error(`integration test cannot run: ${reason}`);
  process.stderr.write(`\n*** SKIPPING integration suite: ${reason} ***\n\n`);
  return reason;
}
