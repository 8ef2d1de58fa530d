/**
 * The figures of one Traefik service (or one deployment) as a flat vector of numbers, so that
 * per-scrape deltas, sums across targets and minute totals are plain element-wise arithmetic.
 * The latency buckets come last, one slot per bucket bound of the target's layout.
 */

/** Requests by status class: 1xx, 2xx, 3xx, 4xx, 5xx, then codes outside 100-599. */
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'other'] as const;
export type StatusClass = (typeof STATUS_CLASSES)[number];

export const SLOT = {
  /** First of the six status-class counts. */
  status: 0,
  requestBytes: 6,
  responseBytes: 7,
  durationSum: 8,
  durationCount: 9,
  /** A gauge: never a delta, the latest value. */
  openConnections: 10,
  /** First latency bucket (cumulative count at the layout's i-th bound). */
  buckets: 11,
} as const;

export function vectorLength(bucketBounds: number): number {
  return SLOT.buckets + bucketBounds;
}

/** Index of a status code's class in the status slots. */
export function statusSlot(code: number): number {
  return code >= 100 && code <= 599 ? Math.floor(code / 100) - 1 : 5;
}

/** Total requests of a vector: the sum of its status classes. */
export function requestsOf(vector: ArrayLike<number>): number {
  let total = 0;
  for (let i = 0; i < STATUS_CLASSES.length; i++) total += vector[SLOT.status + i]!;
  return total;
}

/** A vector with the bucket bounds it is laid out for (ascending, Infinity last). */
export interface Figures {
  readonly bounds: readonly number[];
  readonly vector: Float64Array;
}

/** A vector laid out for `from` bounds, re-laid for `to` (a superset). */
export function relayout(vector: Float64Array, from: readonly number[], to: readonly number[]): Float64Array {
  if (from.length === to.length) return vector;
  const out = new Float64Array(vectorLength(to.length));
  out.set(vector.subarray(0, SLOT.buckets));
  from.forEach((le, i) => (out[SLOT.buckets + to.indexOf(le)] = vector[SLOT.buckets + i]!));
  return out;
}

/**
 * `into + add` element-wise. The gauge is summed too (`gauge: 'sum'`: services of one deployment,
 * or targets of one tick) or replaced by the later value (`'last'`: ticks of one minute). When the
 * layouts differ, the result is laid out for the union of bounds.
 */
export function addFigures(into: Figures | undefined, add: Figures, gauge: 'sum' | 'last'): Figures {
  if (!into) return { bounds: add.bounds, vector: Float64Array.from(add.vector) };
  let { bounds, vector } = into;
  let addVector = add.vector;
  if (!sameBounds(bounds, add.bounds)) {
    const union = [...new Set([...bounds, ...add.bounds])].sort((a, b) => a - b);
    vector = relayout(vector, bounds, union);
    addVector = relayout(add.vector, add.bounds, union);
    bounds = union;
  }
  const open = vector[SLOT.openConnections]!;
  for (let i = 0; i < vector.length; i++) vector[i]! += addVector[i]!;
  vector[SLOT.openConnections] =
    gauge === 'sum' ? open + addVector[SLOT.openConnections]! : addVector[SLOT.openConnections]!;
  return { bounds, vector };
}

function sameBounds(a: readonly number[], b: readonly number[]): boolean {
  return a === b || (a.length === b.length && a.every((le, i) => le === b[i]));
}
