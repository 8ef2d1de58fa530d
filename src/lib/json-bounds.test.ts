import { describe, expect, it } from 'vitest';
import { exceedsJsonLimits, jsonEqual } from './json-bounds.js';

const limits = { maxDepth: 16, maxNodes: 1_000 };
const nested = (levels: number): unknown => JSON.parse(`{"a":${'['.repeat(levels)}${']'.repeat(levels)}}`);

describe('exceedsJsonLimits', () => {
  it('measures 9,000 levels of nesting without overflowing the stack', () => {
    expect(exceedsJsonLimits(nested(9_000), limits)).toMatch(/deeper than 16/);
    expect(exceedsJsonLimits(nested(10), limits)).toBeUndefined();
  });

  it('counts values, however flat', () => {
    expect(exceedsJsonLimits({ list: Array.from({ length: 2_000 }, (_, i) => i) }, limits)).toMatch(
      /more than 1000 values/,
    );
    expect(exceedsJsonLimits('a string', limits)).toBeUndefined();
  });
});

describe('jsonEqual', () => {
  it('compares objects by own keys in any order, arrays in order', () => {
    expect(jsonEqual({ a: 1, b: [1, { c: 'x' }] }, { b: [1, { c: 'x' }], a: 1 }, limits)).toBe(true);
    expect(jsonEqual({ a: 1 }, { a: 1, b: 2 }, limits)).toBe(false);
    expect(jsonEqual([1, 2], [2, 1], limits)).toBe(false);
    expect(jsonEqual({ a: null }, { a: {} }, limits)).toBe(false);
    expect(jsonEqual(JSON.parse('{"__proto__": 1}'), {}, limits)).toBe(false);
  });

  it('calls values past the limits unequal instead of overflowing', () => {
    expect(jsonEqual(nested(9_000), nested(9_000), limits)).toBe(false);
  });
});
