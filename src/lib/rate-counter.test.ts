import { describe, expect, it } from 'vitest';
import { RateCounter } from './rate-counter.js';

describe('RateCounter', () => {
  it('gives events per second over the last whole seconds, forgetting older ones', () => {
    const clock = { now: 1_000_000 };
    const rate = new RateCounter(() => clock.now);
    for (let s = 0; s < 10; s++) {
      rate.record(s < 5 ? 2 : 4);
      clock.now += 1_000;
    }
    expect(rate.perSecond(10)).toBe(3);
    expect(rate.perSecond(5)).toBe(4);
    clock.now += 120_000;
    expect(rate.perSecond(60)).toBe(0);
  });
});
