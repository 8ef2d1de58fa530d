import { describe, expect, it } from 'vitest';
import { reuseUnchanged, type RoutingRow } from './routing-table.js';
import { routingRow } from '../../test/fixtures/routing-rows.js';

const row = (id: string, overrides: Partial<Record<keyof RoutingRow, unknown>> = {}): RoutingRow =>
  routingRow(id, { middleware: { compress: true }, ...overrides });

describe('reuseUnchanged', () => {
  it('hands back the previous object for every unchanged row, and the new one for changed rows', () => {
    const previous = [row('a'), row('b'), row('c')];
    const next = reuseUnchanged(previous, [
      row('a'),
      row('b', { domain: 'b2.example.com' }),
      row('c', { middleware: { compress: false } }),
      row('d'),
    ]);
    expect(next[0]).toBe(previous[0]);
    expect(next[1]).not.toBe(previous[1]);
    expect(next[1]!.domain).toBe('b2.example.com');
    expect(next[2]).not.toBe(previous[2]);
    expect(next.map((r) => r.id)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('compares a middleware nested 9,000 levels deep without overflowing, as a changed row', () => {
    const deep = () => JSON.parse(`{"a":${'['.repeat(9000)}${']'.repeat(9000)}}`) as unknown;
    const previous = [row('a', { middleware: deep() }), row('b')];
    let next: RoutingRow[] = [];
    expect(() => (next = reuseUnchanged(previous, [row('a', { middleware: deep() }), row('b')]))).not.toThrow();
    // Compared by identity: a matcher would walk the deep document to describe it.
    expect(next[0] === previous[0]).toBe(false);
    expect(next[1] === previous[1]).toBe(true);
  });
});
