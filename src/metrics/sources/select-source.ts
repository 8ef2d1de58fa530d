import type Docker from 'dockerode';
import { CgroupStatsSource } from './cgroup-source.js';
import { DockerStatsSource } from './docker-source.js';
import type { StatsSource } from './stats-source.js';

/** STATS_SOURCE: docker, cgroup, or auto (cgroup when this machine's cgroup files are readable). */
export function createStatsSource(
  choice: 'auto' | 'docker' | 'cgroup',
  options: { docker: Docker; cgroupRoot: string; procRoot: string; dockerConcurrency: number; timeoutMs: number },
): StatsSource {
  const cgroup = { cgroupRoot: options.cgroupRoot, procRoot: options.procRoot };
  if (choice === 'cgroup' || (choice === 'auto' && CgroupStatsSource.available(cgroup)))
    return new CgroupStatsSource(cgroup);
  return new DockerStatsSource(options.docker, {
    concurrency: options.dockerConcurrency,
    timeoutMs: options.timeoutMs,
  });
}
