/**
 * The metrics role's Prometheus series, read at scrape time from its parts' own figures (the
 * Telemetry interface is the only door to prom-client).
 */
import type { FeedStats } from '../feed/metrics-feed.js';
import type { StoreStats } from './aggregate-store.js';
import type { CollectorStats } from './collector.js';

export interface MetricsTelemetrySink {
  gauge(name: string, help: string, read: () => number): void;
  counter(name: string, help: string, read: () => number): void;
  labelledGauge(name: string, help: string, label: string, read: () => Record<string, number>): void;
  labelledCounter(name: string, help: string, label: string, read: () => Record<string, number>): void;
}

export interface MetricsFigures {
  collection(): CollectorStats;
  storage(): StoreStats;
  feed(): FeedStats;
  liveCache(): { bytes: number; containers: number };
  /** 1 per breaker that is open or half-open, by breaker name. */
  breakers(): Record<string, number>;
}

export function registerMetricsTelemetry(t: MetricsTelemetrySink, f: MetricsFigures): void {
  t.counter('swarm_edge_metrics_collections_total', 'Collection ticks run', () => f.collection().ticks);
  t.counter('swarm_edge_metrics_collection_errors_total', 'Collection ticks that failed', () => f.collection().errors);
  t.counter(
    'swarm_edge_metrics_collection_overruns_total',
    'Ticks skipped because the previous one was still running',
    () => f.collection().overruns,
  );
  t.gauge(
    'swarm_edge_metrics_containers_sampled',
    'Containers sampled by the last tick',
    () => f.collection().containersSampled,
  );
  t.gauge(
    'swarm_edge_metrics_containers_failed',
    'Containers that could not be sampled in the last tick',
    () => f.collection().containersFailed,
  );
  t.gauge(
    'swarm_edge_metrics_collection_seconds',
    'Wall time of the last collection tick',
    () => (f.collection().lastDurationMs ?? 0) / 1000,
  );
  t.gauge(
    'swarm_edge_metrics_last_collection_timestamp_seconds',
    'When the last collection finished',
    () => (f.collection().lastCollectionAt ?? 0) / 1000,
  );
  t.counter('swarm_edge_metrics_rows_written_total', 'Aggregate rows written', () => f.storage().rowsWritten);
  t.counter('swarm_edge_metrics_batches_written_total', 'Aggregate batches written', () => f.storage().batchesWritten);
  t.counter(
    'swarm_edge_metrics_batches_failed_total',
    'Aggregate batches that failed',
    () => f.storage().batchesFailed,
  );
  t.counter(
    'swarm_edge_metrics_rows_dropped_total',
    'Aggregate rows dropped because the buffer was full',
    () => f.storage().droppedRows,
  );
  t.gauge('swarm_edge_metrics_rows_buffered', 'Aggregate rows waiting to be written', () => f.storage().bufferedRows);
  t.gauge(
    'swarm_edge_metrics_last_write_timestamp_seconds',
    'When aggregates were last written',
    () => (f.storage().lastWriteAt ?? 0) / 1000,
  );
  t.labelledGauge('swarm_edge_breaker_open', 'Circuit breakers: 1 when open or half-open', 'breaker', () =>
    f.breakers(),
  );
  t.gauge('swarm_edge_feed_subscribers', 'Websocket feed clients connected', () => f.feed().subscribers);
  t.gauge(
    'swarm_edge_feed_slow_subscribers',
    'Feed clients currently over their buffer limit',
    () => f.feed().slowSubscribers,
  );
  t.counter('swarm_edge_feed_slow_disconnects_total', 'Feed clients closed as slow', () => f.feed().slowDisconnects);
  t.counter('swarm_edge_feed_disconnects_total', 'Feed clients disconnected', () => f.feed().disconnects);
  t.counter(
    'swarm_edge_feed_conflated_samples_total',
    'Samples replaced by a newer one before being sent',
    () => f.feed().conflated,
  );
  t.counter('swarm_edge_feed_samples_sent_total', 'Samples sent to feed clients', () => f.feed().samplesSent);
  t.counter(
    'swarm_edge_feed_auth_failures_total',
    'Feed connections refused for their token',
    () => f.feed().authFailures,
  );
  t.counter('swarm_edge_feed_bad_messages_total', 'Malformed or unknown feed messages', () => f.feed().badMessages);
  t.counter(
    'swarm_edge_feed_remote_rejected_total',
    'Messages on the Redis feed channels dropped as invalid',
    () => f.feed().remoteRejected,
  );
  t.labelledCounter(
    'swarm_edge_feed_snapshots_total',
    'Snapshots sent, by source: the Redis window stream (complete) or the live cache (this node)',
    'source',
    () => ({ stream: f.feed().snapshotsFromStream, cache: f.feed().snapshotsFromCache }),
  );
  t.labelledCounter(
    'swarm_edge_feed_resumes_total',
    'Subscriptions with since: recovered (exactly the missed samples) or full (the whole window)',
    'outcome',
    () => ({ recovered: f.feed().resumesRecovered, full: f.feed().resumesFull }),
  );
  t.counter(
    'swarm_edge_feed_stream_rejected_total',
    'Window stream entries dropped as invalid',
    () => f.feed().streamRejected,
  );
  t.counter(
    'swarm_edge_feed_duplicates_suppressed_total',
    'Samples not sent again because a snapshot already held them',
    () => f.feed().duplicatesSuppressed,
  );
  t.gauge('swarm_edge_live_cache_bytes', 'Size of the live sample cache', () => f.liveCache().bytes);
  t.gauge('swarm_edge_live_cache_containers', 'Containers in the live sample cache', () => f.liveCache().containers);
}
