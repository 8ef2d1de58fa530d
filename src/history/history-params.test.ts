import { describe, expect, it } from 'vitest';
import { HistoryParameterError, MAX_POINTS, parseInstant, parseStep, planHistory } from './history-params.js';

const NOW = Date.UTC(2026, 10, 30, 12, 0, 0);
const limits = { retentionDays: 30, now: NOW };

function refusal(id: string, query: Record<string, unknown>): { parameter: string; message: string } {
  try {
    planHistory(id, query, limits);
  } catch (error) {
    if (error instanceof HistoryParameterError) return { parameter: error.parameter, message: error.message };
    throw error;
  }
  throw new Error('accepted');
}

describe('history parameters', () => {
  it('defaults to the last hour at one minute, per deployment, from minute rows', () => {
    const plan = planHistory('dep-1', {}, limits);
    expect(plan).toMatchObject({ from: NOW - 3_600_000, to: NOW, stepMs: 60_000, per: 'deployment' });
    expect(plan.resolution).toBe('minute');
    expect(plan.points).toBe(60);
  });

  it('reads 24 h at one minute from minute rows and 7 d at one hour from the rollup', () => {
    const day = planHistory('dep-1', { from: String(NOW - 86_400_000), to: String(NOW), step: '1m' }, limits);
    expect([day.resolution, day.points]).toEqual(['minute', 1440]);
    const week = planHistory('dep-1', { from: new Date(NOW - 7 * 86_400_000).toISOString(), step: '1h' }, limits);
    expect([week.resolution, week.points]).toEqual(['hour', 168]);
    // Per container there is no rollup: whole hours are re-cut from minute rows.
    expect(
      planHistory('dep-1', { from: String(NOW - 86_400_000), step: '3600', per: 'container' }, limits),
    ).toMatchObject({ resolution: 'minute', stepMs: 3_600_000 });
  });

  it('aligns the range to the step and picks the finest step that fits when none is given', () => {
    const plan = planHistory('dep-1', { from: String(NOW - 90 * 60_000 + 1_234), to: String(NOW + 7) }, limits);
    expect(plan.from % 60_000).toBe(0);
    expect(plan.to % 60_000).toBe(0);
    expect(plan.from).toBeLessThanOrEqual(NOW - 90 * 60_000 + 1_234);
    expect(plan.to).toBeGreaterThanOrEqual(NOW + 7);
    const week = planHistory('dep-1', { from: String(NOW - 7 * 86_400_000) }, limits);
    expect(week.stepMs).toBe(15 * 60_000);
    expect(week.points).toBeLessThanOrEqual(MAX_POINTS);
  });

  it('needs whole hours and per=deployment past the minute rows retention', () => {
    const old = String(NOW - 60 * 86_400_000);
    expect(planHistory('dep-1', { from: old }, limits)).toMatchObject({ resolution: 'hour', stepMs: 3_600_000 });
    expect(refusal('dep-1', { from: old, step: '5m' }).parameter).toBe('step');
    expect(refusal('dep-1', { from: old, per: 'container' }).parameter).toBe('from');
  });

  it('refuses bad input naming the parameter', () => {
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['dep 1', {}, 'id'],
      ['x'.repeat(129), {}, 'id'],
      ["dep'; DROP TABLE container_metrics; --", {}, 'id'],
      ['dep-1', { from: String(NOW), to: String(NOW - 1) }, 'from'],
      ['dep-1', { from: String(NOW), to: String(NOW) }, 'from'],
      ['dep-1', { from: '2026-11-30' }, 'from'],
      ['dep-1', { from: 'yesterday' }, 'from'],
      ['dep-1', { from: '1; SELECT pg_sleep(10)' }, 'from'],
      ['dep-1', { to: '99999999999999999999' }, 'to'],
      ['dep-1', { to: '9007199254740993' }, 'to'],
      ['dep-1', { from: '1e12' }, 'from'],
      ['dep-1', { from: '-1' }, 'from'],
      ['dep-1', { from: '2026-02-30T00:00:00Z' }, 'from'],
      ['dep-1', { from: ['1', '2'] }, 'from'],
      ['dep-1', { step: '30s' }, 'step'],
      ['dep-1', { step: '0' }, 'step'],
      ['dep-1', { step: '90s' }, 'step'],
      ['dep-1', { step: '1w' }, 'step'],
      ['dep-1', { step: '99999999d' }, 'step'],
      ['dep-1', { step: '1.5m' }, 'step'],
      ['dep-1', { from: String(NOW - 7 * 86_400_000), step: '1m' }, 'step'],
      ['dep-1', { per: 'node' }, 'per'],
      ['dep-1', { per: 'Container' }, 'per'],
      ['dep-1', { limit: '5' }, 'limit'],
      ['dep-1', { __proto__x: '1' }, '__proto__x'],
      ['dep-1', { from: String(Date.UTC(2000, 0, 1)), to: String(Date.UTC(2099, 0, 1)), step: '1h' }, 'step'],
      ['dep-1', { from: String(Date.UTC(2000, 0, 1)), to: String(Date.UTC(2099, 0, 1)) }, 'from'],
    ];
    for (const [id, query, parameter] of cases) {
      const { parameter: named, message } = refusal(id, query);
      expect([id.slice(0, 20), query, named]).toEqual([id.slice(0, 20), query, parameter]);
      expect(message.startsWith(`${parameter}: `)).toBe(true);
    }
    // A prototype key in the query object is a parameter like any other: unknown, refused.
    const polluted = JSON.parse('{"__proto__": {"per": "container"}}') as Record<string, unknown>;
    expect(refusal('dep-1', polluted).parameter).toBe('__proto__');
  });

  it('parses instants and steps exactly', () => {
    expect(parseInstant('from', '2026-11-30T12:00:00Z')).toBe(NOW);
    expect(parseInstant('from', '2026-11-30T13:00:00.000+01:00')).toBe(NOW);
    expect(parseInstant('from', String(NOW))).toBe(NOW);
    expect(parseStep('60')).toBe(60_000);
    expect(parseStep('5m')).toBe(300_000);
    expect(parseStep('1d')).toBe(86_400_000);
  });
});
