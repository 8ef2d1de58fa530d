/**
 * The stored 60 s windows of one instance, checked against what it was doing:
 * - no duplicate (container, minute);
 * - no gap: every minute between a container's first and last window is stored, unless the
 *   instance was not running during it (killed, restarting) or dockerd was down (nothing to
 *   collect). Those minutes are counted as excused, by cause;
 * - exact sums: a window whose samples were all recorded from Redis has exactly their byte
 *   deltas, and each recorded sample's delta is its counter's increase since the one before.
 */
import pg from 'pg';
import type { Lifetime } from './instance.js';
import type { RecordedSample, SampleRecorder } from './sample-recorder.js';

const MINUTE = 60_000;

export interface Interval {
  readonly from: number;
  readonly to: number;
}

export interface MetricsCheck {
  rows: number;
  containers: number;
  duplicates: number;
  gaps: Array<{ containerId: string; minute: string }>;
  excusedRestart: number;
  excusedDockerd: number;
  windowsVerified: number;
  windowsUnverifiable: number;
  windowMismatches: string[];
  bytesVerified: number;
  counterSteps: number;
  counterMismatches: number;
  rowsDropped: number;
}

interface Row {
  container_id: string;
  bucket: string;
  net_rx_bytes: string;
  net_tx_bytes: string;
  block_read_bytes: string;
  block_write_bytes: string;
  samples: number;
}

export async function checkMetrics(
  url: string,
  lifetimes: readonly Lifetime[],
  dockerdDown: readonly Interval[],
  recorder: SampleRecorder,
  intervalMs: number,
): Promise<MetricsCheck> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  let rows: Row[];
  let duplicates: number;
  try {
    rows = (
      await client.query<Row>(`SELECT container_id, (extract(epoch FROM bucket) * 1000)::bigint::text AS bucket, net_rx_bytes, net_tx_bytes,
      block_read_bytes, block_write_bytes, samples FROM container_metrics ORDER BY container_id, bucket`)
    ).rows;
    duplicates = Number(
      (
        await client.query<{ n: string }>(
          `SELECT count(*) - count(DISTINCT (container_id, bucket)) AS n FROM container_metrics`,
        )
      ).rows[0]!.n,
    );
  } finally {
    await client.end();
  }

  // When this instance was not collecting: from each lifetime's end to the next one's first collection.
  const down: Interval[] = [];
  lifetimes.forEach((lifetime, i) => {
    if (lifetime.endedAt === undefined) return;
    const next = lifetimes[i + 1];
    down.push({ from: lifetime.endedAt, to: next ? next.startedAt + 20_000 : Infinity });
  });
  const overlaps = (intervals: readonly Interval[], from: number, to: number) =>
    intervals.some((i) => i.from < to && i.to > from);

  const result: MetricsCheck = {
    rows: rows.length,
    containers: 0,
    duplicates,
    gaps: [],
    excusedRestart: 0,
    excusedDockerd: 0,
    windowsVerified: 0,
    windowsUnverifiable: 0,
    windowMismatches: [],
    bytesVerified: 0,
    counterSteps: 0,
    counterMismatches: 0,
    rowsDropped: lifetimes.reduce((sum, l) => sum + l.droppedRows, 0),
  };
  const byContainer = new Map<string, Row[]>();
  for (const row of rows) {
    const list = byContainer.get(row.container_id);
    if (list) list.push(row);
    else byContainer.set(row.container_id, [row]);
  }
  result.containers = byContainer.size;

  const streams = lifetimes
    .flatMap((l) => (l.instanceId ? [recorder.byInstance.get(l.instanceId)] : []))
    .filter((s) => s !== undefined);
  for (const [containerId, list] of byContainer) {
    for (let i = 1; i < list.length; i++) {
      for (let minute = Number(list[i - 1]!.bucket) + MINUTE; minute < Number(list[i]!.bucket); minute += MINUTE) {
        // A minute's window also needs the grace after it to be written.
        const end = minute + MINUTE + intervalMs + 2_000;
        if (overlaps(down, minute, end)) result.excusedRestart += 1;
        else if (overlaps(dockerdDown, minute, end)) result.excusedDockerd += 1;
        else result.gaps.push({ containerId: containerId.slice(0, 12), minute: new Date(minute).toISOString() });
      }
    }
    for (const row of list) {
      const bucket = Number(row.bucket);
      const candidates = streams.map((s) =>
        (s.get(containerId) ?? []).filter((x) => Math.floor(x.ts / MINUTE) * MINUTE === bucket),
      );
      const complete = candidates.filter((c) => c.length === row.samples);
      if (complete.length === 0) {
        if (candidates.some((c) => c.length > row.samples))
          result.windowMismatches.push(
            `${containerId.slice(0, 12)} ${new Date(bucket).toISOString()}: more samples recorded than stored`,
          );
        else result.windowsUnverifiable += 1;
        continue;
      }
      const want = [
        Number(row.net_rx_bytes),
        Number(row.net_tx_bytes),
        Number(row.block_read_bytes),
        Number(row.block_write_bytes),
      ];
      const matches = complete.some((samples) => {
        const sums = [0, 0, 0, 0];
        for (const s of samples) {
          sums[0]! += s.netRxDelta;
          sums[1]! += s.netTxDelta;
          sums[2]! += s.blockReadDelta;
          sums[3]! += s.blockWriteDelta;
        }
        return sums.every((v, k) => v === want[k]);
      });
      if (matches) {
        result.windowsVerified += 1;
        result.bytesVerified += want.reduce((a, b) => a + b, 0);
      } else {
        result.windowMismatches.push(
          `${containerId.slice(0, 12)} ${new Date(bucket).toISOString()}: stored ${want.join('/')} differs from the recorded deltas`,
        );
      }
    }
  }
  for (const stream of streams) {
    for (const samples of stream.values()) checkCounters(samples, intervalMs, result);
  }
  return result;
}

/** Each recorded delta equals the counter's increase since the previous sample (consecutive ticks only). */
function checkCounters(samples: readonly RecordedSample[], intervalMs: number, result: MetricsCheck): void {
  const sorted = [...samples].sort((a, b) => a.ts - b.ts);
  const pairs: Array<[keyof RecordedSample, keyof RecordedSample]> = [
    ['netRxBytes', 'netRxDelta'],
    ['netTxBytes', 'netTxDelta'],
    ['blockReadBytes', 'blockReadDelta'],
    ['blockWriteBytes', 'blockWriteDelta'],
  ];
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const s = sorted[i]!;
    if (s.ts - prev.ts > intervalMs * 1.5) continue; // a tick is missing from the record
    for (const [counter, delta] of pairs) {
      const before = prev[counter] as number | null;
      const after = s[counter] as number | null;
      if (before === null || after === null || after < before) continue; // unreadable, or reset
      result.counterSteps += 1;
      if ((s[delta] as number) !== after - before) result.counterMismatches += 1;
    }
  }
}
