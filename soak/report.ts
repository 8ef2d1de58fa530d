/** The soak's result as tables, and the list of what makes it fail. */
import type { BadInputStats } from './bad-input.js';
import type { Interval, MetricsCheck } from './metrics-check.js';
import type { FileReaderStats, LagStats } from './route-observers.js';
import type { Difference } from './truth.js';
import type { ChurnStats } from './workload.js';

export interface FaultRecord {
  readonly name: string;
  readonly affects: string;
  readonly dependency: string | undefined;
  /** An instance's /health showed the dependency down while the fault lasted. */
  reported: boolean;
  readonly start: number;
  restoredAt: number;
  recoveredAt: number | undefined;
}

export interface SoakResult {
  command: string;
  durationMs: number;
  deployments: number;
  churn: ChurnStats;
  faults: FaultRecord[];
  finalRoutes: {
    truthRoutes: number;
    copies: Array<{ copy: string; difference: Difference; routes: number }>;
    injected: number;
  };
  files: Array<{ instance: string } & FileReaderStats>;
  lag: Array<{ instance: string } & LagStats>;
  metrics: Array<{ instance: string } & MetricsCheck>;
  feed: {
    readers: number;
    samplesReceived: number;
    readerGaps: Array<[number, number]>;
    /** Samples a reader was sent more often than there are collectors, outside a full snapshot. */
    duplicates: number;
    /** Samples at or before `since` in a resume that said `recovered: true`. */
    resumeViolations: number;
    resumesRecovered: number;
    resumesFull: number;
    faultWindows: Interval[];
    intervalMs: number;
    stalledConnects: number;
    stalledClosed: number;
    slowClosedByServer: number;
  };
  instances: Array<{
    name: string;
    lifetimes: Array<{ end: string; exitCode: number | null; peakRssBytes: number; droppedRows: number }>;
  }>;
  termExitCodes: Array<number | null>;
  badInput: BadInputStats;
  recorderMessages: number;
}

const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;

function table(
  out: (line: string) => void,
  header: readonly string[],
  rows: ReadonlyArray<ReadonlyArray<string | number>>,
): void {
  out(`| ${header.join(' | ')} |`);
  out(`| ${header.map(() => '---').join(' | ')} |`);
  for (const row of rows) out(`| ${row.join(' | ')} |`);
  out('');
}

/** Prints the tables; returns the failures (empty: the soak passed). */
export function printReport(r: SoakResult, out: (line: string) => void): string[] {
  const failures: string[] = [];
  const churnTotal = Object.values(r.churn.actions).reduce((a, b) => a + b, 0);
  out('');
  out(
    `## Soak: ${s(r.durationMs)}, ${r.deployments} deployments, 2 instances, ${r.faults.length} faults, ${churnTotal} churn actions (${Object.entries(
      r.churn.actions,
    )
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}; ${r.churn.failed} failed during faults)`,
  );
  out('');

  out('### Routes');
  table(
    out,
    ['copy', 'routes', 'missing', 'stale', 'wrong'],
    r.finalRoutes.copies.map((c) => [
      c.copy,
      c.routes,
      c.difference.missing.length,
      c.difference.stale.length,
      c.difference.wrong.length,
    ]),
  );
  out(`Truth after the last fault and a resync: ${r.finalRoutes.truthRoutes} routes.`);
  out('');
  for (const c of r.finalRoutes.copies) {
    const d = c.difference;
    if (d.missing.length + d.stale.length + d.wrong.length > 0)
      failures.push(
        `${c.copy} differs from the truth: ${[...d.missing.map((k) => `missing ${k}`), ...d.stale.map((k) => `stale ${k}`), ...d.wrong].slice(0, 5).join('; ')}`,
      );
  }
  table(
    out,
    [
      'instance',
      'file reads',
      'versions seen',
      'partial',
      'empty',
      'max lag',
      'max lag, no fault under way',
      'lag episodes',
    ],
    r.files.map((f) => {
      const lag = r.lag.find((l) => l.instance === f.instance)!;
      if (f.partial > 0) failures.push(`${f.instance}: the file was seen partial ${f.partial} times`);
      if (f.empty > 0) failures.push(`${f.instance}: the file was seen empty ${f.empty} times`);
      return [
        f.instance,
        f.reads,
        f.versions,
        f.partial,
        f.empty,
        s(lag.maxLagMs),
        s(lag.maxSteadyLagMs),
        lag.episodes,
      ];
    }),
  );

  out('### Metrics (stored 60 s windows, per instance)');
  table(
    out,
    [
      'instance',
      'windows',
      'containers',
      'duplicates',
      'gaps',
      'excused: restart / dockerd down',
      'verified exact / unverifiable',
      'mismatches',
      'bytes verified',
      'counter steps (mismatched)',
      'rows dropped',
    ],
    r.metrics.map((m) => {
      if (m.duplicates > 0) failures.push(`${m.instance}: ${m.duplicates} duplicate windows`);
      if (m.gaps.length > 0)
        failures.push(
          `${m.instance}: ${m.gaps.length} windows missing while the collector was up (${m.gaps
            .slice(0, 3)
            .map((g) => `${g.containerId} ${g.minute}`)
            .join(', ')})`,
        );
      if (m.windowMismatches.length > 0)
        failures.push(
          `${m.instance}: ${m.windowMismatches.length} windows differ from the recorded samples (${m.windowMismatches.slice(0, 3).join('; ')})`,
        );
      if (m.counterMismatches > 0)
        failures.push(`${m.instance}: ${m.counterMismatches} sample deltas differ from their counters`);
      if (m.rowsDropped > 0) failures.push(`${m.instance}: ${m.rowsDropped} rows dropped`);
      if (m.rows === 0) failures.push(`${m.instance}: no windows stored at all`);
      return [
        m.instance,
        m.rows,
        m.containers,
        m.duplicates,
        m.gaps.length,
        `${m.excusedRestart} / ${m.excusedDockerd}`,
        `${m.windowsVerified} / ${m.windowsUnverifiable}`,
        m.windowMismatches.length,
        m.bytesVerified,
        `${m.counterSteps} (${m.counterMismatches})`,
        m.rowsDropped,
      ];
    }),
  );

  out('### Websockets');
  const inFault = (gap: [number, number]) => r.feed.faultWindows.some((w) => w.from < gap[1] && w.to > gap[0]);
  const steady = r.feed.readerGaps
    .filter((g) => !inFault(g))
    .map((g) => g[1] - g[0])
    .sort((a, b) => a - b);
  const all = r.feed.readerGaps.map((g) => g[1] - g[0]).sort((a, b) => a - b);
  const p = (list: number[], q: number) => list[Math.min(list.length - 1, Math.floor(q * list.length))] ?? 0;
  const peaks = r.instances
    .map((i) => `${i.name} ${mib(Math.max(...i.lifetimes.map((l) => l.peakRssBytes)))}`)
    .join(', ');
  table(
    out,
    [
      'readers',
      'samples received',
      'duplicates',
      'resumes recovered / full (samples at or before since)',
      'gap p50 / p99 / max, no fault',
      'max gap across faults',
      'stalled connections',
      'closed as slow (server)',
      'peak RSS',
    ],
    [
      [
        r.feed.readers,
        r.feed.samplesReceived,
        r.feed.duplicates,
        `${r.feed.resumesRecovered} / ${r.feed.resumesFull} (${r.feed.resumeViolations})`,
        `${s(p(steady, 0.5))} / ${s(p(steady, 0.99))} / ${s(steady.at(-1) ?? 0)}`,
        s(all.at(-1) ?? 0),
        r.feed.stalledConnects,
        r.feed.slowClosedByServer,
        peaks,
      ],
    ],
  );
  out(
    `Samples come every ${s(r.feed.intervalMs)} from each instance (both collect this node's containers; readers get the other's through Redis).`,
  );
  out('');
  if (r.feed.duplicates > 0)
    failures.push(`feed readers were sent ${r.feed.duplicates} samples more often than there are collectors`);
  if (r.feed.resumeViolations > 0)
    failures.push(`resumed snapshots held ${r.feed.resumeViolations} samples the reader had asked to skip`);
  if (r.feed.stalledConnects > 0 && r.feed.slowClosedByServer === 0)
    failures.push('no stalled client was closed as slow');

  out('### Bad input');
  const crashes = r.instances.flatMap((i) => i.lifetimes.filter((l) => l.end === 'crash').map(() => i.name));
  table(
    out,
    ['kind', 'tried', 'rejected as expected', 'wrong answers'],
    Object.entries(r.badInput).map(([kind, t]) => {
      if (t.wrong.length > 0) failures.push(`bad ${kind}: ${t.wrong.slice(0, 5).join('; ')}`);
      return [kind, t.tried, t.rejectedRight, t.wrong.length];
    }),
  );
  const injected = r.finalRoutes.injected + r.files.reduce((n, f) => n + f.injected, 0);
  out(
    `Crashes: ${crashes.length}. Routes injected: ${injected}. Exit codes after SIGTERM: ${r.termExitCodes.join(', ')}.`,
  );
  out('');
  if (crashes.length > 0) failures.push(`crashes: ${crashes.join(', ')}`);
  if (injected > 0) failures.push(`${injected} injected routes published`);
  if (r.termExitCodes.some((c) => c !== 0))
    failures.push(`an instance did not exit 0 on SIGTERM: ${r.termExitCodes.join(', ')}`);

  out('### Recovery');
  table(
    out,
    ['fault', 'outage', 'reported in /health', 'healthy again after'],
    r.faults.map((f) => {
      if (f.recoveredAt === undefined) failures.push(`not healthy again after: ${f.name}`);
      if (f.dependency !== undefined && !f.reported)
        failures.push(`${f.name}: /health never showed ${f.dependency} down`);
      return [
        f.name,
        s(f.restoredAt - f.start),
        f.dependency === undefined ? '—' : f.reported ? `yes (${f.dependency} down)` : 'NO',
        f.recoveredAt === undefined ? 'NEVER' : s(f.recoveredAt - f.restoredAt),
      ];
    }),
  );
  return failures;
}
