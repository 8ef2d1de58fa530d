/**
 * A deployment's request figures for one interval, as the feed sends them: the `requests` frame.
 */
import { SLOT, STATUS_CLASSES, requestsOf, type Figures, type StatusClass } from './figures.js';
import { sortedQuantile, type Bucket } from './histogram-quantile.js';

export interface RequestFigures {
  readonly deploymentId: string;
  /** When the interval ended (ms). */
  readonly ts: number;
  readonly intervalMs: number;
  readonly requests: number;
  readonly requestsPerSecond: number;
  readonly status: Readonly<Record<StatusClass, number>>;
  readonly requestBytes: number;
  readonly responseBytes: number;
  /** Interpolated from the latency histogram (null without requests). */
  readonly latencyMs: { readonly p50: number | null; readonly p95: number | null; readonly p99: number | null };
  readonly openConnections: number;
}

export function bucketsOf(figures: Figures): Bucket[] {
  return figures.bounds.map((le, i) => ({ le, count: figures.vector[SLOT.buckets + i]! }));
}

function quantileMs(q: number, figures: Figures): number | null {
  const seconds = sortedQuantile(q, figures.bounds, figures.vector, SLOT.buckets);
  return seconds === undefined ? null : Math.round(seconds * 1e6) / 1e3;
}

export function requestFigures(deploymentId: string, figures: Figures, ts: number, intervalMs: number): RequestFigures {
  const v = figures.vector;
  const requests = Math.round(requestsOf(v));
  const status = Object.fromEntries(STATUS_CLASSES.map((c, i) => [c, Math.round(v[SLOT.status + i]!)])) as Record<
    StatusClass,
    number
  >;
  return {
    deploymentId,
    ts,
    intervalMs,
    requests,
    requestsPerSecond: intervalMs > 0 ? Math.round((requests / (intervalMs / 1000)) * 1000) / 1000 : 0,
    status,
    requestBytes: Math.round(v[SLOT.requestBytes]!),
    responseBytes: Math.round(v[SLOT.responseBytes]!),
    latencyMs: { p50: quantileMs(0.5, figures), p95: quantileMs(0.95, figures), p99: quantileMs(0.99, figures) },
    openConnections: Math.round(v[SLOT.openConnections]!),
  };
}
