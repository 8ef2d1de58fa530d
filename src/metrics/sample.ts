/**
 * One container's stats: the raw cumulative counters a source reads, and the sample computed
 * from two consecutive readings. All the arithmetic lives here, so both sources (Docker API and
 * cgroup files) give the same figures from the same counters.
 */

/** Cumulative counters as read at `at` (ms since epoch). Undefined: the source could not read it. */
export interface RawStats {
  readonly at: number;
  /** Container CPU time, ns. */
  readonly cpuNs: number | undefined;
  /** Host CPU time (all CPUs, as /proc/stat counts it), ns: the docker CLI's system_cpu_usage. */
  readonly systemCpuNs: number | undefined;
  readonly onlineCpus: number;
  /** Memory usage minus inactive file cache (what `docker stats` shows), bytes. */
  readonly memoryBytes: number | undefined;
  /** Undefined when unlimited. */
  readonly memoryLimitBytes: number | undefined;
  readonly netRxBytes: number | undefined;
  readonly netTxBytes: number | undefined;
  readonly blockReadBytes: number | undefined;
  readonly blockWriteBytes: number | undefined;
  readonly pids: number | undefined;
  /** CFS periods in which the container was throttled (its CPU quota spent), cumulative. */
  readonly throttledPeriods?: number | undefined;
  /** Time the container spent throttled, ns, cumulative. */
  readonly throttledNs?: number | undefined;
  /** Processes of the container killed by the OOM killer, cumulative (cgroup files only). */
  readonly oomKills?: number | undefined;
}

export interface ContainerRef {
  readonly containerId: string;
  readonly deploymentId: string;
  readonly nodeId: string;
  readonly serviceId: string | undefined;
  readonly taskId: string | undefined;
  readonly name: string;
}

/** What the live cache, the feed and the aggregates hold. Counters are cumulative; deltas are since the previous sample. */
export interface Sample {
  readonly containerId: string;
  readonly deploymentId: string;
  readonly nodeId: string;
  readonly serviceId: string | null;
  readonly taskId: string | null;
  /** ms since epoch. */
  readonly ts: number;
  /** Percent of one CPU (docker CLI formula: 200 = two CPUs busy); null on the first sample. */
  readonly cpuPercent: number | null;
  readonly memoryBytes: number | null;
  readonly memoryLimitBytes: number | null;
  readonly pids: number | null;
  readonly netRxBytes: number | null;
  readonly netTxBytes: number | null;
  readonly blockReadBytes: number | null;
  readonly blockWriteBytes: number | null;
  /** Counter increases since the previous sample (0 on the first; the new value after a reset). */
  readonly netRxDelta: number;
  readonly netTxDelta: number;
  readonly blockReadDelta: number;
  readonly blockWriteDelta: number;
  /** Bytes per second over the interval since the previous sample; null on the first sample. */
  readonly netRxRate: number | null;
  readonly netTxRate: number | null;
  readonly blockReadRate: number | null;
  readonly blockWriteRate: number | null;
  /**
   * Throttling and OOM kills: cumulative as read (null when the source cannot tell), and their
   * increases since the previous sample. Optional: samples of older instances on the Redis
   * channels have none.
   */
  readonly cpuThrottledPeriods?: number | null;
  readonly cpuThrottledSeconds?: number | null;
  readonly oomKills?: number | null;
  readonly cpuThrottledPeriodsDelta?: number;
  readonly cpuThrottledSecondsDelta?: number;
  readonly oomKillsDelta?: number;
}

/**
 * Increase of a cumulative counter. A counter that went down was reset (the container restarted):
 * everything it counts now happened since the reset, as Prometheus' increase() assumes.
 */
export function counterDelta(previous: number | undefined, current: number | undefined): number {
  if (current === undefined || previous === undefined) return 0;
  return current >= previous ? current - previous : current;
}

/** The docker CLI's CPU formula: Δcontainer / Δsystem × online CPUs × 100, only when both grew. */
export function cpuPercent(previous: RawStats | undefined, current: RawStats): number | null {
  if (previous === undefined) return null;
  const { cpuNs: c0, systemCpuNs: s0 } = previous;
  const { cpuNs: c1, systemCpuNs: s1 } = current;
  if (c0 === undefined || c1 === undefined || s0 === undefined || s1 === undefined) return null;
  const cpuDelta = c1 - c0;
  const systemDelta = s1 - s0;
  // A reset (restart) or a clock oddity: no honest figure for this interval.
  if (cpuDelta < 0 || systemDelta <= 0) return cpuDelta < 0 ? null : 0;
  const percent = (cpuDelta / systemDelta) * current.onlineCpus * 100;
  return Math.min(round(percent, 2), current.onlineCpus * 100);
}

export function toSample(ref: ContainerRef, previous: RawStats | undefined, current: RawStats): Sample {
  const seconds = previous === undefined ? 0 : (current.at - previous.at) / 1000;
  const delta = (key: 'netRxBytes' | 'netTxBytes' | 'blockReadBytes' | 'blockWriteBytes') =>
    counterDelta(previous?.[key], current[key]);
  const rate = (d: number) => (seconds > 0 ? round(d / seconds, 1) : null);
  const netRxDelta = delta('netRxBytes');
  const netTxDelta = delta('netTxBytes');
  const blockReadDelta = delta('blockReadBytes');
  const blockWriteDelta = delta('blockWriteBytes');
  return {
    containerId: ref.containerId,
    deploymentId: ref.deploymentId,
    nodeId: ref.nodeId,
    serviceId: ref.serviceId ?? null,
    taskId: ref.taskId ?? null,
    ts: current.at,
    cpuPercent: cpuPercent(previous, current),
    memoryBytes: current.memoryBytes ?? null,
    memoryLimitBytes: current.memoryLimitBytes ?? null,
    pids: current.pids ?? null,
    netRxBytes: current.netRxBytes ?? null,
    netTxBytes: current.netTxBytes ?? null,
    blockReadBytes: current.blockReadBytes ?? null,
    blockWriteBytes: current.blockWriteBytes ?? null,
    netRxDelta,
    netTxDelta,
    blockReadDelta,
    blockWriteDelta,
    netRxRate: rate(netRxDelta),
    netTxRate: rate(netTxDelta),
    blockReadRate: rate(blockReadDelta),
    blockWriteRate: rate(blockWriteDelta),
    cpuThrottledPeriods: current.throttledPeriods ?? null,
    cpuThrottledSeconds: current.throttledNs === undefined ? null : round(current.throttledNs / 1e9, 6),
    oomKills: current.oomKills ?? null,
    cpuThrottledPeriodsDelta: counterDelta(previous?.throttledPeriods, current.throttledPeriods),
    cpuThrottledSecondsDelta: round(counterDelta(previous?.throttledNs, current.throttledNs) / 1e9, 6),
    oomKillsDelta: counterDelta(previous?.oomKills, current.oomKills),
  };
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
