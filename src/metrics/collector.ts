/**
 * Samples every deployment container on this node every interval. Ticks sit on multiples of the
 * interval (wall clock), so samples of all nodes line up; ticks never overlap: a tick still
 * running when the next is due makes that next one skip (counted and logged), and collection
 * resumes on the following slot.
 */
import { notifyAll } from '../lib/listeners.js';
import type { Logger } from '../lib/logger.js';
import { failureLogLevel } from '../lib/backoff.js';
import type { LocalContainers } from './local-containers.js';
import { toSample, type RawStats, type Sample } from './sample.js';
import type { StatsSource } from './sources/stats-source.js';
import { errorMessage } from '../lib/errors.js';

export type SamplesListener = (samples: readonly Sample[]) => void;

export interface CollectorStats {
  readonly source: string;
  readonly ticks: number;
  readonly overruns: number;
  readonly errors: number;
  readonly consecutiveErrors: number;
  readonly lastError: string | undefined;
  readonly containersSampled: number;
  readonly containersFailed: number;
  readonly samplesTotal: number;
  readonly lastCollectionAt: number | undefined;
  readonly lastDurationMs: number | undefined;
  readonly lastCpuMs: number | undefined;
}

export class Collector {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  private readonly previous = new Map<string, RawStats>();
  private readonly listeners: SamplesListener[] = [];
  private s = {
    ticks: 0,
    overruns: 0,
    errors: 0,
    consecutiveErrors: 0,
    lastError: undefined as string | undefined,
    containersSampled: 0,
    containersFailed: 0,
    samplesTotal: 0,
    lastCollectionAt: undefined as number | undefined,
    lastDurationMs: undefined as number | undefined,
    lastCpuMs: undefined as number | undefined,
  };

  constructor(
    private readonly options: { intervalMs: number },
    private readonly deps: { containers: LocalContainers; source: StatsSource; log: Logger },
  ) {}

  onSamples(listener: SamplesListener): void {
    this.listeners.push(listener);
  }

  stats(): CollectorStats {
    return { source: this.deps.source.name, ...this.s };
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.scheduleNext();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** Runs one collection now (tests and benchmarks); resolves with its samples. */
  async collectOnce(): Promise<readonly Sample[]> {
    return this.tick();
  }

  private scheduleNext(): void {
    if (this.stopped) return;
    const interval = this.options.intervalMs;
    const delay = interval - (Date.now() % interval);
    this.timer = setTimeout(() => this.onTimer(), delay);
    this.timer.unref();
  }

  private onTimer(): void {
    this.scheduleNext();
    if (this.running) {
      this.s.overruns += 1;
      this.deps.log.warn(
        { overruns: this.s.overruns, intervalMs: this.options.intervalMs },
        'collection still running at the next tick; skipping that tick',
      );
      return;
    }
    this.running = this.tick()
      .then(() => undefined)
      .finally(() => {
        this.running = undefined;
      });
  }

  private async tick(): Promise<readonly Sample[]> {
    const started = performance.now();
    const cpuStart = process.cpuUsage();
    this.s.ticks += 1;
    try {
      const containers = await this.deps.containers.list();
      const raws = await this.deps.source.readAll(containers);
      const samples: Sample[] = [];
      const live = new Set<string>();
      let failed = 0;
      containers.forEach((container, index) => {
        const id = container.ref.containerId;
        live.add(id);
        const raw = raws[index];
        if (raw === undefined || raw instanceof Error) {
          failed += 1;
          return;
        }
        samples.push(toSample(container.ref, this.previous.get(id), raw));
        this.previous.set(id, raw);
      });
      for (const id of this.previous.keys()) if (!live.has(id)) this.previous.delete(id);

      this.s.containersSampled = samples.length;
      this.s.containersFailed = failed;
      this.s.samplesTotal += samples.length;
      this.s.lastCollectionAt = Date.now();
      this.s.consecutiveErrors = 0;
      this.s.lastError = undefined;
      if (failed > 0) {
        const firstError = raws.find((r): r is Error => r instanceof Error);
        this.deps.log.debug(
          { failed, sampled: samples.length, err: firstError },
          'some containers could not be sampled',
        );
      }
      notifyAll(this.listeners, [samples], this.deps.log, 'samples');
      return samples;
    } catch (error) {
      this.s.errors += 1;
      this.s.consecutiveErrors += 1;
      this.s.lastError = errorMessage(error);
      this.deps.log[failureLogLevel(this.s.consecutiveErrors)]({ err: error }, 'collection failed');
      return [];
    } finally {
      this.s.lastDurationMs = performance.now() - started;
      const cpu = process.cpuUsage(cpuStart);
      this.s.lastCpuMs = (cpu.user + cpu.system) / 1000;
    }
  }
}
