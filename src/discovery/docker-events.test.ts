import { describe, expect, it } from 'vitest';
import { deliveryOf } from './docker-events.js';

describe('deliveryOf', () => {
  const now = 1_800_000_000_000;

  it("measures from the daemon's event time to now", () => {
    expect(deliveryOf((now - 250) * 1e6, now)).toBeCloseTo(250, 3);
    // A daemon clock a little ahead of this process (rounding) reads as no delay.
    expect(deliveryOf((now + 500) * 1e6, now)).toBe(0);
  });

  it('gives nothing for a value that is not a plausible timestamp', () => {
    for (const bad of [undefined, null, '1800000000000000000', Number.NaN, Infinity, -1, 0, 1, Number.MAX_VALUE, {}])
      expect(deliveryOf(bad, now)).toBeUndefined();
    // Too far in the future or the past: a clock that is not this one's.
    expect(deliveryOf((now + 5_000) * 1e6, now)).toBeUndefined();
    expect(deliveryOf((now - 2 * 3_600_000) * 1e6, now)).toBeUndefined();
  });
});
