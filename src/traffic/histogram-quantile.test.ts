import { describe, expect, it } from 'vitest';
import { histogramQuantile, sortedQuantile } from './histogram-quantile.js';

const buckets = (pairs: [number, number][]) => pairs.map(([le, count]) => ({ le, count }));

describe('histogramQuantile (as PromQL histogram_quantile)', () => {
  const h = buckets([
    [0.1, 10],
    [0.5, 20],
    [Infinity, 20],
  ]);
  it('interpolates linearly inside the rank bucket, the first starting at 0', () => {
    expect(histogramQuantile(0.5, h)).toBeCloseTo(0.1);
    expect(histogramQuantile(0.75, h)).toBeCloseTo(0.3);
    expect(histogramQuantile(0.99, h)).toBeCloseTo(0.492);
    expect(histogramQuantile(0.25, h)).toBeCloseTo(0.05);
  });
  it('answers the highest finite bound for a rank in +Inf, and nothing without +Inf or observations', () => {
    expect(
      histogramQuantile(
        0.9,
        buckets([
          [0.1, 5],
          [Infinity, 10],
        ]),
      ),
    ).toBe(0.1);
    expect(
      histogramQuantile(
        0.5,
        buckets([
          [0.1, 5],
          [1, 10],
        ]),
      ),
    ).toBeUndefined();
    expect(
      histogramQuantile(
        0.5,
        buckets([
          [0.1, 0],
          [Infinity, 0],
        ]),
      ),
    ).toBeUndefined();
    expect(histogramQuantile(1.5, h)).toBeUndefined();
  });
  it('sums equal bounds, sorts, and makes counts monotonic', () => {
    const shuffled = buckets([
      [Infinity, 10],
      [0.5, 5],
      [0.1, 5],
      [0.5, 5],
      [Infinity, 10],
    ]);
    expect(histogramQuantile(0.5, shuffled)).toBeCloseTo(0.5);
    expect(
      histogramQuantile(
        0.5,
        buckets([
          [0.1, 8],
          [0.5, 6],
          [Infinity, 10],
        ]),
      ),
    ).toBeCloseTo(0.0625);
  });
});

describe('sortedQuantile', () => {
  it('agrees with histogramQuantile on ordered buckets', () => {
    const bounds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, Infinity];
    let seed = 3;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (let t = 0; t < 200; t++) {
      let running = 0;
      const counts = bounds.map(() => (running += random() < 0.3 ? 0 : Math.floor(random() * 50)));
      const buckets = bounds.map((le, i) => ({ le, count: counts[i]! }));
      for (const q of [0, 0.5, 0.9, 0.95, 0.99, 1])
        expect(sortedQuantile(q, bounds, [9, ...counts], 1)).toBe(histogramQuantile(q, buckets));
    }
  });
});
