/**
 * Quantiles from cumulative histogram buckets, as Prometheus' `histogram_quantile` computes them
 * (promql/quantile.go, bucketQuantile): the rank's bucket is found, and the value interpolated
 * linearly inside it; the first bucket starts at 0 (when its bound is positive); a rank in the
 * +Inf bucket answers the highest finite bound. The live feed, the stored minutes and the history
 * API all use this one function, so their quantiles agree with PromQL on the same buckets.
 */

export interface Bucket {
  /** Upper bound in seconds; Infinity for +Inf. */
  readonly le: number;
  /** Observations ≤ le (cumulative). */
  readonly count: number;
}

/** The q-quantile of `buckets` (any order), or undefined where PromQL answers NaN. */
export function histogramQuantile(q: number, buckets: readonly Bucket[]): number | undefined {
  if (Number.isNaN(q) || q < 0 || q > 1) return undefined;
  if (buckets.length < 2) return undefined;
  const sorted = coalesce(buckets);
  const last = sorted[sorted.length - 1]!;
  if (last.le !== Infinity) return undefined;
  const observations = last.count;
  if (!(observations > 0)) return undefined;
  let rank = q * observations;
  let b = sorted.findIndex((bucket) => bucket.count >= rank);
  if (b === -1) b = sorted.length - 1;
  if (b === sorted.length - 1) return sorted.length >= 2 ? sorted[sorted.length - 2]!.le : undefined;
  if (b === 0 && sorted[0]!.le <= 0) return sorted[0]!.le;
  let start = 0;
  const end = sorted[b]!.le;
  let count = sorted[b]!.count;
  if (b > 0) {
    start = sorted[b - 1]!.le;
    count -= sorted[b - 1]!.count;
    rank -= sorted[b - 1]!.count;
  }
  return start + (end - start) * (rank / count);
}

/**
 * Sorted by bound, equal bounds summed, counts made monotonic as PromQL does (a lower count after a
 * higher one is raised to it: buckets scraped at slightly different moments can disagree).
 */
function coalesce(buckets: readonly Bucket[]): Bucket[] {
  const sorted = [...buckets].filter((b) => !Number.isNaN(b.le)).sort((a, b) => a.le - b.le);
  const merged: { le: number; count: number }[] = [];
  for (const bucket of sorted) {
    const previous = merged[merged.length - 1];
    if (previous && previous.le === bucket.le) previous.count += bucket.count;
    else merged.push({ le: bucket.le, count: bucket.count });
  }
  let max = -Infinity;
  for (const bucket of merged) {
    if (bucket.count < max) bucket.count = max;
    else max = bucket.count;
  }
  return merged;
}

/**
 * The same quantile for buckets already in order (ascending, distinct bounds, +Inf last, counts
 * at `counts[offset + i]`): the live feed's figures, computed every interval for every deployment
 * without the copies and the sort.
 */
export function sortedQuantile(
  q: number,
  bounds: readonly number[],
  counts: ArrayLike<number>,
  offset: number,
): number | undefined {
  const n = bounds.length;
  if (n < 2 || bounds[n - 1] !== Infinity) return undefined;
  let max = 0;
  for (let i = 0; i < n; i++) max = Math.max(max, counts[offset + i]!);
  const observations = max;
  if (!(observations > 0)) return undefined;
  let rank = q * observations;
  let b = 0;
  let previous = 0;
  let running = 0;
  for (; b < n; b++) {
    running = Math.max(running, counts[offset + b]!);
    if (running >= rank) break;
    previous = running;
  }
  if (b >= n - 1) return bounds[n - 2];
  if (b === 0 && bounds[0]! <= 0) return bounds[0];
  const start = b === 0 ? 0 : bounds[b - 1]!;
  const count = running - previous;
  rank -= previous;
  return start + (bounds[b]! - start) * (rank / count);
}
