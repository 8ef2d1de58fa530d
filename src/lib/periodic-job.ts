/**
 * A background loop: runs never overlap, the first run is jittered, timers are unref'd so they
 * never keep the process alive, failures are logged (never thrown) and retried with backoff, and
 * stop() waits for the run in progress. trigger() asks for a run now, coalescing with any
 * run already queued. While a failed run waits for its backoff, a trigger does not cut the wait
 * short (the retry is already due, and a stream of triggers against a failing dependency would
 * otherwise retry it in a hot loop), unless the caller knows the cause is gone (`urgent`).
 */
import type { Logger } from './logger.js';
import { backoffDelay, failureLogLevel, type BackoffPolicy } from './backoff.js';
import { errorMessage } from './errors.js';

export interface PeriodicJobOptions {
  readonly name: string;
  readonly intervalMs: number;
  readonly run: () => Promise<void>;
  readonly log: Logger;
  /** Upper bound of the random delay before the first run. Default: no delay. */
  readonly firstRunJitterMs?: number;
  /** When set, a failed run is retried after a backoff delay instead of the interval. */
  readonly backoff?: BackoffPolicy;
  readonly random?: () => number;
}

export interface JobStats {
  readonly runs: number;
  readonly failures: number;
  readonly consecutiveFailures: number;
  readonly lastDurationMs: number | undefined;
  readonly lastSuccessAt: number | undefined;
  readonly lastError: string | undefined;
}

export class PeriodicJob {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private rerun = false;
  private urgentRerun = false;
  private stopped = true;
  private stats = {
    runs: 0,
    failures: 0,
    consecutiveFailures: 0,
    lastDurationMs: undefined as number | undefined,
    lastSuccessAt: undefined as number | undefined,
    lastError: undefined as string | undefined,
  };

  constructor(private readonly options: PeriodicJobOptions) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const random = this.options.random ?? Math.random;
    this.schedule(Math.round((this.options.firstRunJitterMs ?? 0) * random()));
  }

  /**
   * Runs as soon as possible; a trigger during a run makes exactly one more run after it. After a
   * failure, the retry keeps its backoff delay unless `urgent` (e.g. the dependency is back).
   */
  trigger(options: { urgent?: boolean } = {}): void {
    if (this.stopped) return;
    if (this.running) {
      this.rerun = true;
      if (options.urgent) this.urgentRerun = true;
      return;
    }
    if (this.backingOff() && !options.urgent) return;
    this.schedule(0);
  }

  private backingOff(): boolean {
    return this.options.backoff !== undefined && this.stats.consecutiveFailures > 0 && this.timer !== undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  getStats(): JobStats {
    return { ...this.stats };
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.runOnce().finally(() => {
        this.running = undefined;
      });
    }, delayMs);
    this.timer.unref();
  }

  private async runOnce(): Promise<void> {
    const started = performance.now();
    let nextDelay = this.options.intervalMs;
    let failed = false;
    this.stats.runs += 1;
    try {
      await this.options.run();
      this.stats.consecutiveFailures = 0;
      this.stats.lastSuccessAt = Date.now();
      this.stats.lastError = undefined;
    } catch (error) {
      failed = true;
      this.stats.failures += 1;
      this.stats.consecutiveFailures += 1;
      this.stats.lastError = errorMessage(error);
      if (this.options.backoff) {
        nextDelay = backoffDelay(this.options.backoff, this.stats.consecutiveFailures - 1, this.options.random);
      }
      // The first failure and every tenth after it at warn: a dependency that stays down must not
      // flood the log, and its state is in /health anyway.
      const attempt = this.stats.consecutiveFailures;
      this.options.log[failureLogLevel(attempt)](
        { job: this.options.name, err: error, attempt, retryInMs: nextDelay },
        `${this.options.name} failed`,
      );
    } finally {
      this.stats.lastDurationMs = performance.now() - started;
    }
    if (this.rerun) {
      // A failed run's retry keeps its backoff: it will see whatever the trigger was about.
      if (!failed || this.urgentRerun || this.options.backoff === undefined) nextDelay = 0;
      this.rerun = false;
      this.urgentRerun = false;
    }
    this.schedule(nextDelay);
  }
}
