import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { backoffDelay } from './backoff.js';
import { PeriodicJob } from './periodic-job.js';

const log = pino({ level: 'silent' });

describe('backoffDelay', () => {
  it('doubles up to the cap and keeps at least half of it', () => {
    const policy = { baseMs: 100, maxMs: 1000 };
    expect(backoffDelay(policy, 0, () => 0)).toBe(50);
    expect(backoffDelay(policy, 0, () => 1)).toBe(100);
    expect(backoffDelay(policy, 3, () => 1)).toBe(800);
    expect(backoffDelay(policy, 10, () => 1)).toBe(1000);
    expect(backoffDelay(policy, 10, () => 0)).toBe(500);
  });
});

describe('PeriodicJob', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('never overlaps runs, and a trigger during a run makes exactly one more', async () => {
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    let release: () => void = () => undefined;
    const job = new PeriodicJob({
      name: 't',
      intervalMs: 60_000,
      log,
      run: async () => {
        runs += 1;
        active += 1;
        maxActive = Math.max(maxActive, active);
        await new Promise<void>((resolve) => (release = resolve));
        active -= 1;
      },
    });
    job.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(runs).toBe(1);
    job.trigger();
    job.trigger();
    release();
    await vi.advanceTimersByTimeAsync(0);
    expect(runs).toBe(2);
    release();
    await vi.advanceTimersByTimeAsync(0);
    expect(runs).toBe(2);
    expect(maxActive).toBe(1);
    const stopped = job.stop();
    release();
    await stopped;
  });

  it('retries a failing run with backoff, then returns to the interval', async () => {
    let calls = 0;
    const job = new PeriodicJob({
      name: 't',
      intervalMs: 10_000,
      backoff: { baseMs: 100, maxMs: 1_000 },
      random: () => 1,
      log,
      run: () => {
        calls += 1;
        return calls <= 3 ? Promise.reject(new Error('down')) : Promise.resolve();
      },
    });
    job.start();
    await vi.advanceTimersByTimeAsync(0); // call 1 fails → 100 ms
    await vi.advanceTimersByTimeAsync(100); // call 2 fails → 200 ms
    await vi.advanceTimersByTimeAsync(200); // call 3 fails → 400 ms
    expect(calls).toBe(3);
    expect(job.getStats()).toMatchObject({ failures: 3, consecutiveFailures: 3, lastError: 'down' });
    await vi.advanceTimersByTimeAsync(400); // call 4 succeeds → 10 s
    expect(calls).toBe(4);
    await vi.advanceTimersByTimeAsync(9_999);
    expect(calls).toBe(4);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toBe(5);
    expect(job.getStats().consecutiveFailures).toBe(0);
    await job.stop();
  });

  it('does nothing after stop', async () => {
    let calls = 0;
    const job = new PeriodicJob({ name: 't', intervalMs: 1_000, log, run: () => Promise.resolve(void (calls += 1)) });
    job.start();
    await vi.advanceTimersByTimeAsync(0);
    await job.stop();
    job.trigger();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(calls).toBe(1);
  });

  it('keeps the backoff of a failing run whatever triggers arrive, unless a trigger is urgent', async () => {
    let runs = 0;
    const job = new PeriodicJob({
      name: 't',
      intervalMs: 60_000,
      backoff: { baseMs: 1_000, maxMs: 10_000 },
      random: () => 1,
      log,
      run: () => {
        runs += 1;
        return Promise.reject(new Error('column "domain" does not exist'));
      },
    });
    job.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(runs).toBe(1);
    // A storm of change notifications while the retry waits: no extra run.
    for (let i = 0; i < 100; i++) job.trigger();
    await vi.advanceTimersByTimeAsync(900);
    expect(runs).toBe(1);
    await vi.advanceTimersByTimeAsync(200);
    expect(runs).toBe(2);
    // The dependency is back: an urgent trigger runs at once.
    job.trigger({ urgent: true });
    await vi.advanceTimersByTimeAsync(0);
    expect(runs).toBe(3);
    await job.stop();
  });
});
