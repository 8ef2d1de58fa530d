/**
 * One Traefik target's minutes: what its scrapes added, per deployment, minute by minute, until
 * the store has them, and the checkpoint those minutes continue from.
 *
 * Exactly once, across instances and restarts: the stored minutes of a target are a chain. Each
 * write (traffic-store.ts, one transaction) adds the minutes measured since the target's
 * checkpoint and moves the checkpoint to the counters they were measured up to, provided the
 * checkpoint is still the one this ledger started from (its sequence number). So every increase
 * of every counter lands in exactly one stored minute, whoever scraped it:
 * - an instance that (re)starts continues from the checkpoint, not from a fresh baseline, so the
 *   minutes it was away are counted (in its first minute) and nothing is counted twice;
 * - an instance that finds the checkpoint moved by another drops its unwritten minutes and
 *   re-measures from that checkpoint to its latest scrape (ServiceCounters.replay).
 * Minutes wait here while the database is away; past a day of them, the oldest are merged into
 * the next (their figures kept, their time coarser), never dropped.
 */
import { addFigures, type Figures } from './figures.js';
import { ServiceCounters, type CounterSnapshot } from './service-counters.js';

export const MINUTE_MS = 60_000;
const MAX_PENDING_MINUTES = 1_440;

export interface MinuteFigures {
  /** Start of the minute, ms. */
  readonly minute: number;
  readonly byDeployment: ReadonlyMap<string, Figures>;
}

export interface Checkpoint {
  readonly seq: number;
  readonly minute: number;
  readonly holder: string;
  /** Undefined when it could not be read: the chain goes on from a new baseline. */
  readonly snapshot: CounterSnapshot | undefined;
}

/** What a write must carry: minutes, and the counters they end at, on top of checkpoint `baseSeq`. */
export interface LedgerWork {
  readonly target: string;
  /** 0: no checkpoint existed when this ledger started. */
  readonly baseSeq: number;
  readonly minutes: readonly MinuteFigures[];
  readonly snapshot: CounterSnapshot;
}

export class TargetLedger {
  readonly counters = new ServiceCounters();
  /** Whether the checkpoint was read (the counters continue from it, or there was none). */
  loaded = false;
  private baseSeq = 0;
  private minute: number | undefined;
  private current = new Map<string, Figures>();
  private pending: MinuteFigures[] = [];
  private pendingSnapshot: CounterSnapshot | undefined;
  private s = { minutesMerged: 0, rebases: 0 };

  constructor(readonly target: string) {}

  stats() {
    return { pendingMinutes: this.pending.length, baseSeq: this.baseSeq, ...this.s, counters: this.counters.stats() };
  }

  /** Starts from the stored checkpoint (or from nothing). */
  load(checkpoint: Checkpoint | undefined): void {
    this.reset();
    if (checkpoint) {
      if (checkpoint.snapshot) this.counters.restore(checkpoint.snapshot);
      this.baseSeq = checkpoint.seq;
    }
    this.loaded = true;
  }

  /** Drops everything (this instance stopped scraping): the next holder continues from the checkpoint. */
  reset(): void {
    this.counters.forget();
    this.baseSeq = 0;
    this.minute = undefined;
    this.current = new Map();
    this.pending = [];
    this.pendingSnapshot = undefined;
    this.loaded = false;
  }

  /** Before a scrape at `now`: closes the minute in progress when `now` is past it. */
  roll(now: number): void {
    const minute = Math.floor(now / MINUTE_MS) * MINUTE_MS;
    if (this.minute === undefined) {
      this.minute = minute;
      return;
    }
    if (minute <= this.minute) return;
    this.pending.push({ minute: this.minute, byDeployment: this.current });
    this.pendingSnapshot = this.counters.snapshot();
    this.current = new Map();
    this.minute = minute;
    while (this.pending.length > MAX_PENDING_MINUTES) this.mergeOldest();
  }

  /** A scrape's deltas, joined to deployments, into the minute in progress. */
  add(byDeployment: ReadonlyMap<string, Figures>): void {
    for (const [deploymentId, figures] of byDeployment)
      this.current.set(deploymentId, addFigures(this.current.get(deploymentId), figures, 'last'));
  }

  /** Nothing left to write: no closed minute waiting, nothing counted in the minute in progress. */
  idle(): boolean {
    return this.pending.length === 0 && this.current.size === 0;
  }

  /** Closed minutes to write, or undefined. */
  work(): LedgerWork | undefined {
    if (this.pending.length === 0 || !this.pendingSnapshot) return undefined;
    return { target: this.target, baseSeq: this.baseSeq, minutes: [...this.pending], snapshot: this.pendingSnapshot };
  }

  /** `work` was written as checkpoint `seq`. Minutes closed meanwhile stay pending. */
  written(work: LedgerWork, seq: number): void {
    const last = work.minutes[work.minutes.length - 1]!.minute;
    this.pending = this.pending.filter((m) => m.minute > last);
    if (this.pending.length === 0) this.pendingSnapshot = undefined;
    this.baseSeq = seq;
  }

  /**
   * The checkpoint moved under this ledger (another instance wrote): its unwritten minutes are
   * dropped and what it counted since is re-measured from `checkpoint`, into the minute in
   * progress. `join` maps the re-measured service deltas to deployments.
   */
  rebase(
    checkpoint: Checkpoint,
    join: (counters: ServiceCounters, latest: CounterSnapshot) => Map<string, Figures>,
  ): void {
    const latest = this.counters.snapshot();
    this.baseSeq = checkpoint.seq;
    this.pending = [];
    this.pendingSnapshot = undefined;
    if (checkpoint.snapshot) {
      this.counters.restore(checkpoint.snapshot);
      this.current = join(this.counters, latest);
    } else {
      this.counters.forget();
      this.current = new Map();
    }
    this.s.rebases += 1;
  }

  private mergeOldest(): void {
    const [oldest, next] = this.pending as [MinuteFigures, MinuteFigures];
    const merged = new Map(next.byDeployment);
    for (const [deploymentId, figures] of oldest.byDeployment) {
      const later = merged.get(deploymentId);
      // The earlier minute first, so the later gauge wins.
      merged.set(deploymentId, later ? addFigures(addFigures(undefined, figures, 'last'), later, 'last') : figures);
    }
    this.pending.splice(0, 2, { minute: next.minute, byDeployment: merged });
    this.s.minutesMerged += 1;
  }
}
