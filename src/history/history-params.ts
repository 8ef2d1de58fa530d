/**
 * The history API's query parameters, validated and resolved into one plan: which table answers
 * (minute rows or the hourly rollup), the bucket width, and the aligned range. Pure, so every
 * refusal can be tested without a database; each refusal names the parameter at fault.
 *
 * Resolution: minute rows are kept `retentionDays`, the hourly rollup `rollupRetentionDays`
 * (per deployment only). A per-deployment query whose step is whole hours reads the rollup (a
 * 60th of the rows); a range reaching past the minute rows' retention must use whole hours.
 */
import { isIdentifier } from '../lib/identifiers.js';

export const MAX_POINTS = 2_000;
const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
/** Steps picked when the client names none: the first that fits the range in MAX_POINTS. */
const AUTO_STEPS = [MINUTE, 5 * MINUTE, 15 * MINUTE, HOUR, 6 * HOUR, DAY, 7 * DAY];
/** No plausible history is older than 2000 or stamped past 2100; also keeps Date arithmetic exact. */
const EARLIEST_MS = Date.UTC(2000, 0, 1);
const LATEST_MS = Date.UTC(2100, 0, 1);
const MAX_STEP_MS = 366 * DAY;
const KNOWN = new Set(['from', 'to', 'step', 'per']);

export type Per = 'deployment' | 'container';
export type Resolution = 'minute' | 'hour';

export interface HistoryPlan {
  readonly deploymentId: string;
  /** Inclusive, aligned down to the step. */
  readonly from: number;
  /** Exclusive, aligned up to the step. */
  readonly to: number;
  readonly stepMs: number;
  readonly per: Per;
  readonly resolution: Resolution;
  readonly points: number;
}

export class HistoryParameterError extends Error {
  constructor(
    readonly parameter: string,
    message: string,
  ) {
    super(`${parameter}: ${message}`);
  }
}

export interface PlanLimits {
  readonly retentionDays: number;
  readonly now: number;
}

/** Validates the id and query of GET /api/v1/deployments/{id}/metrics; throws HistoryParameterError. */
export function planHistory(id: string, query: Record<string, unknown>, limits: PlanLimits): HistoryPlan {
  if (!isIdentifier(id)) throw new HistoryParameterError('id', 'must be 1-128 characters of letters, digits, _ . : -');
  for (const key of Object.keys(query)) {
    if (!KNOWN.has(key))
      throw new HistoryParameterError(key.slice(0, 64), 'unknown parameter (expected from, to, step, per)');
  }
  const per = single(query, 'per') ?? 'deployment';
  if (per !== 'deployment' && per !== 'container')
    throw new HistoryParameterError('per', 'must be "deployment" or "container"');
  const rawTo = single(query, 'to');
  const to = rawTo === undefined ? limits.now : parseInstant('to', rawTo);
  const rawFrom = single(query, 'from');
  const from = rawFrom === undefined ? to - HOUR : parseInstant('from', rawFrom);
  if (from >= to) throw new HistoryParameterError('from', 'must be before to');

  const minuteRowsFrom = limits.now - limits.retentionDays * DAY;
  const needsHours = from < minuteRowsFrom;
  if (needsHours && per === 'container')
    throw new HistoryParameterError(
      'from',
      `per-container history is kept ${limits.retentionDays} days; older ranges are per deployment (per=deployment)`,
    );
  const rawStep = single(query, 'step');
  const floor = needsHours ? HOUR : MINUTE;
  let stepMs: number;
  if (rawStep === undefined) {
    const fits = AUTO_STEPS.find((s) => s >= floor && bucketCount(from, to, s) <= MAX_POINTS);
    if (fits === undefined)
      throw new HistoryParameterError('from', `the range is too long for ${MAX_POINTS} points at any step`);
    stepMs = fits;
  } else {
    stepMs = parseStep(rawStep);
    if (needsHours && stepMs % HOUR !== 0)
      throw new HistoryParameterError(
        'step',
        `minute rows are kept ${limits.retentionDays} days; a range reaching further back needs a step of whole hours`,
      );
    const points = bucketCount(from, to, stepMs);
    if (points > MAX_POINTS)
      throw new HistoryParameterError(
        'step',
        `${points} points per series; at most ${MAX_POINTS} (use a larger step or a shorter range)`,
      );
  }
  const alignedFrom = Math.floor(from / stepMs) * stepMs;
  const alignedTo = Math.ceil(to / stepMs) * stepMs;
  return {
    deploymentId: id,
    from: alignedFrom,
    to: alignedTo,
    stepMs,
    per,
    resolution: per === 'deployment' && stepMs % HOUR === 0 ? 'hour' : 'minute',
    points: (alignedTo - alignedFrom) / stepMs,
  };
}

function bucketCount(from: number, to: number, stepMs: number): number {
  return Math.ceil(to / stepMs) - Math.floor(from / stepMs);
}

/** A repeated parameter (`?from=1&from=2`) arrives as an array: refused, not guessed. */
function single(query: Record<string, unknown>, name: string): string | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new HistoryParameterError(name, 'must be given once');
  return value;
}

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

/** Milliseconds since the epoch (digits only) or an ISO 8601 instant with its offset. */
export function parseInstant(name: string, raw: string): number {
  let ms: number;
  if (/^\d{1,16}$/.test(raw)) ms = Number(raw);
  else if (ISO_INSTANT.test(raw) && realDay(raw)) ms = Date.parse(raw);
  else
    throw new HistoryParameterError(
      name,
      'must be milliseconds since the epoch or an ISO 8601 instant with an offset (2026-11-30T12:00:00Z)',
    );
  if (!Number.isFinite(ms) || ms < EARLIEST_MS || ms > LATEST_MS)
    throw new HistoryParameterError(name, 'must lie between 2000-01-01 and 2100-01-01');
  return ms;
}

/** Date.parse rolls 2026-02-30 over into March: the day must exist in its month. */
function realDay(iso: string): boolean {
  const [year, month, day] = iso.slice(0, 10).split('-').map(Number) as [number, number, number];
  return month >= 1 && month <= 12 && day >= 1 && day <= new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** `60`, `60s`, `5m`, `1h`, `1d` (a bare number is seconds): whole minutes, at most 366 days. */
export function parseStep(raw: string): number {
  const match = /^(\d{1,8})(s|m|h|d)?$/.exec(raw);
  if (!match) throw new HistoryParameterError('step', 'must be a duration such as 60s, 5m, 1h or 1d');
  const unit = { s: 1_000, m: MINUTE, h: HOUR, d: DAY }[match[2] ?? 's']!;
  const ms = Number(match[1]) * unit;
  if (ms < MINUTE || ms % MINUTE !== 0)
    throw new HistoryParameterError('step', 'must be whole minutes (the finest resolution is one minute)');
  if (ms > MAX_STEP_MS) throw new HistoryParameterError('step', 'must be at most 366 days');
  return ms;
}
