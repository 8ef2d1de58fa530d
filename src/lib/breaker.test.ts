import { describe, expect, it } from 'vitest';
import { createBreaker } from './breaker.js';

describe('createBreaker', () => {
  it('opens on a call that fails after longer than the rolling window (a statement timeout)', async () => {
    const slowFailure = () =>
      new Promise<never>((_resolve, reject) =>
        setTimeout(() => reject(new Error('canceling statement due to statement timeout')), 150),
      );
    const breaker = createBreaker(slowFailure, {
      name: 'test',
      timeoutMs: 1_000,
      resetMs: 5_000,
      maxResetMs: 10_000,
      windowMs: 100,
      errorThresholdPercentage: 40,
      volumeThreshold: 1,
    });
    await expect(breaker.fire()).rejects.toThrow(/statement timeout/);
    expect(breaker.state()).toBe('open');
    breaker.shutdown();
  });

  it('doubles the wait before each new trial while the dependency stays away, and closes on success', async () => {
    let fail = true;
    const breaker = createBreaker(() => (fail ? Promise.reject(new Error('down')) : Promise.resolve('ok')), {
      name: 'test',
      timeoutMs: 50,
      resetMs: 20,
      maxResetMs: 1_000,
      windowMs: 1_000,
      errorThresholdPercentage: 40,
      volumeThreshold: 1,
    });
    const states: string[] = [];
    breaker.onStateChange((state) => states.push(state));
    await expect(breaker.fire()).rejects.toThrow('down');
    expect(breaker.state()).toBe('open');
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(breaker.state()).toBe('half-open');
    fail = false;
    await expect(breaker.fire()).resolves.toBe('ok');
    expect(breaker.state()).toBe('closed');
    expect(states).toEqual(['open', 'half-open', 'closed']);
    breaker.shutdown();
  });
});
