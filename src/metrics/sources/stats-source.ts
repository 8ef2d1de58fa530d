/**
 * Where raw counters come from. Two implementations, chosen by STATS_SOURCE: the Docker API
 * (one-shot stats, one call per container) and the cgroup files (what cAdvisor reads, far cheaper).
 */
import type { ContainerRef, RawStats } from '../sample.js';

/** A running container on this node, as the collector knows it. */
export interface LocalContainer {
  readonly ref: ContainerRef;
  /** Host PID of the container's init process (0 when unknown). */
  readonly pid: number;
  /** HostConfig.CgroupParent, '' for the daemon default. */
  readonly cgroupParent: string;
  /** Host networking: the netns counters are the host's, not the container's. */
  readonly hostNetwork: boolean;
  /** Docker's health check state, from the listing's status ("Up 5 minutes (healthy)"). */
  readonly health?: ContainerHealth;
}

/** `none`: the image has no health check. */
export type ContainerHealth = 'healthy' | 'unhealthy' | 'starting' | 'none';

/** The health in a container listing's Status ("Up 2 hours (healthy)", "(health: starting)"). */
export function healthOfStatus(status: unknown): ContainerHealth {
  if (typeof status !== 'string') return 'none';
  if (status.endsWith('(healthy)')) return 'healthy';
  if (status.endsWith('(unhealthy)')) return 'unhealthy';
  if (status.endsWith('(health: starting)')) return 'starting';
  return 'none';
}

export type StatsSourceName = 'docker' | 'cgroup';

export interface StatsSource {
  readonly name: StatsSourceName;
  /** Reads every container; one failure is that container's Error, never the sweep's. */
  readAll(containers: readonly LocalContainer[]): Promise<Array<RawStats | Error>>;
  stats(): Record<string, unknown>;
  /** State of the source's circuit breaker, when it has one (the Docker API source). */
  breakerState?(): 'closed' | 'open' | 'half-open';
}
