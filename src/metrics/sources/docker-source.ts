/**
 * Container counters from the Docker API: GET /containers/{id}/stats?stream=false&one-shot=true.
 * One call per container, so calls run concurrently under a cap, each with a timeout, behind a
 * circuit breaker: a daemon that stops answering is left alone (with growing pauses) instead of
 * being hit by every container on every tick. On daemons before 23.0.8/24.0.7 each one-shot call
 * still waits for the daemon's ~1 s stats tick (moby#46448): idle time, which the cap overlaps.
 */
import type Docker from 'dockerode';
import pLimit from 'p-limit';
import { createBreaker, type Breaker } from '../../lib/breaker.js';
import type { RawStats } from '../sample.js';
import type { LocalContainer, StatsSource } from './stats-source.js';

export interface DockerSourceOptions {
  readonly concurrency: number;
  readonly timeoutMs: number;
}

export class DockerStatsSource implements StatsSource {
  readonly name = 'docker' as const;
  readonly breaker: Breaker<[string], unknown>;
  private readonly limit: ReturnType<typeof pLimit>;
  private calls = 0;
  private failures = 0;

  constructor(
    private readonly docker: Docker,
    options: DockerSourceOptions,
  ) {
    this.limit = pLimit(options.concurrency);
    this.breaker = createBreaker(
      async (id: string) => {
        this.calls += 1;
        // dockerode passes unknown options through as query parameters.
        return await this.docker.getContainer(id).stats({ stream: false, 'one-shot': true } as { stream: false });
      },
      {
        name: 'docker-stats',
        timeoutMs: options.timeoutMs,
        resetMs: 2_000,
        maxResetMs: 60_000,
        windowMs: 30_000,
        errorThresholdPercentage: 50,
        volumeThreshold: 5,
        // A container that exited between listing and reading is not the daemon failing.
        isCallerError: (error) =>
          (error as { statusCode?: number }).statusCode === 404 ||
          (error as { statusCode?: number }).statusCode === 409,
      },
    );
  }

  breakerState() {
    return this.breaker.state();
  }

  stats(): Record<string, unknown> {
    return { calls: this.calls, failures: this.failures, breaker: this.breaker.stats() };
  }

  readAll(containers: readonly LocalContainer[]): Promise<Array<RawStats | Error>> {
    return Promise.all(
      containers.map((container) =>
        this.limit(async () => {
          try {
            return parseDockerStats(await this.breaker.fire(container.ref.containerId), Date.now());
          } catch (error) {
            this.failures += 1;
            return error instanceof Error ? error : new Error(String(error));
          }
        }),
      ),
    );
  }
}

/** The daemon's stats JSON → counters, with the docker CLI's rules (docker/cli stats_helpers.go). */
export function parseDockerStats(body: unknown, at: number): RawStats {
  if (body === null || typeof body !== 'object') throw new Error('stats response is not an object');
  const b = body as DockerStatsBody;
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  const cpu = b.cpu_stats ?? {};
  const onlineCpus = num(cpu.online_cpus) ?? cpu.cpu_usage?.percpu_usage?.length ?? 1;
  const memory = b.memory_stats ?? {};
  const usage = num(memory.usage);
  // cgroup v1 reports total_inactive_file, v2 inactive_file.
  const inactive = num(memory.stats?.total_inactive_file) ?? num(memory.stats?.inactive_file) ?? 0;
  let rx: number | undefined;
  let tx: number | undefined;
  for (const net of Object.values(b.networks ?? {})) {
    rx = (rx ?? 0) + (num(net?.rx_bytes) ?? 0);
    tx = (tx ?? 0) + (num(net?.tx_bytes) ?? 0);
  }
  let read: number | undefined;
  let write: number | undefined;
  const io = b.blkio_stats?.io_service_bytes_recursive;
  if (Array.isArray(io)) {
    read = 0;
    write = 0;
    for (const entry of io) {
      const c = typeof entry?.op === 'string' ? entry.op[0] : undefined;
      if (c === 'r' || c === 'R') read += num(entry.value) ?? 0;
      else if (c === 'w' || c === 'W') write += num(entry.value) ?? 0;
    }
  }
  return {
    at,
    cpuNs: num(cpu.cpu_usage?.total_usage),
    systemCpuNs: num(cpu.system_cpu_usage),
    onlineCpus: Math.max(onlineCpus, 1),
    memoryBytes: usage === undefined ? undefined : Math.max(0, usage - inactive),
    memoryLimitBytes: num(memory.limit),
    netRxBytes: rx,
    netTxBytes: tx,
    blockReadBytes: read,
    blockWriteBytes: write,
    pids: num(b.pids_stats?.current),
    // The stats API has throttling (cpu.stat); OOM kills it does not report (memory.events is not in memory_stats).
    throttledPeriods: num(cpu.throttling_data?.throttled_periods),
    throttledNs: num(cpu.throttling_data?.throttled_time),
  };
}

interface DockerStatsBody {
  cpu_stats?: {
    cpu_usage?: { total_usage?: unknown; percpu_usage?: unknown[] };
    system_cpu_usage?: unknown;
    online_cpus?: unknown;
    throttling_data?: { periods?: unknown; throttled_periods?: unknown; throttled_time?: unknown };
  };
  memory_stats?: {
    usage?: unknown;
    limit?: unknown;
    stats?: { total_inactive_file?: unknown; inactive_file?: unknown };
  };
  networks?: Record<string, { rx_bytes?: unknown; tx_bytes?: unknown } | undefined>;
  blkio_stats?: { io_service_bytes_recursive?: Array<{ op?: unknown; value?: unknown }> | null };
  pids_stats?: { current?: unknown };
}
