import { describe, expect, it } from 'vitest';
import { metricsProblems, type MetricsHealthInput } from './metrics-health.js';

const healthy: MetricsHealthInput = {
  now: 100_000,
  intervalMs: 5_000,
  lastCollectionAt: 96_000,
  lastCollectionError: undefined,
  storageBreaker: 'closed',
  statsBreaker: undefined,
};

describe('metricsProblems', () => {
  it('is healthy with a recent collection and closed breakers', () => {
    expect(metricsProblems(healthy)).toEqual([]);
    expect(metricsProblems({ ...healthy, lastCollectionAt: 85_000 })).toEqual([]);
  });

  it('names a collection older than three intervals, or none ever, with the last error', () => {
    expect(metricsProblems({ ...healthy, lastCollectionAt: 84_000 })).toEqual(['no collection for 16 s']);
    expect(metricsProblems({ ...healthy, lastCollectionAt: undefined, lastCollectionError: 'connect ENOENT' })).toEqual(
      ['no collection for ever (connect ENOENT)'],
    );
  });

  it('names open breakers', () => {
    expect(metricsProblems({ ...healthy, storageBreaker: 'half-open', statsBreaker: 'open' })).toEqual([
      'metrics database breaker half-open',
      'docker stats breaker open',
    ]);
  });
});
