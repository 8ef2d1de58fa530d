/**
 * Where a local task start's time goes on its way to the routes file, in four stages:
 *
 * - delivery: from the daemon's `start` (or `health_status: healthy`) event, by its own timestamp,
 *   to the router reading it: the events stream and this process's event loop;
 * - hint: from reading the event to the task's start hint (no time when the task list held
 *   suffices; a container inspect otherwise);
 * - queue: from the hint to the start of the publish that carries it (a publish already running
 *   finishes first);
 * - publish: that publish's render and write, to the routes file in place.
 *
 * The hint changes the topology at once; the publish that carries it is the first one whose
 * sources were read after it. Starts are recorded in time order, so the publish ends a prefix of
 * them. A publish that fails ends none: the next good one carries them.
 */
import type { HintedStart } from '../discovery/index.js';

export interface StartStages {
  readonly deliveryMs: number | undefined;
  readonly hintMs: number;
  readonly queueMs: number;
  readonly publishMs: number;
}

export interface StartTraceStats {
  /** Starts carried to the routes file. */
  readonly traced: number;
  /** Starts waiting for a publish. */
  readonly pending: number;
  /** Starts dropped unpublished (more than MAX_PENDING waiting: publishing has failed for long). */
  readonly dropped: number;
}

/** Far more starts than publishing lags behind while it works; beyond it, publishing is failing. */
const MAX_PENDING = 10_000;

export class StartTrace {
  private pending: HintedStart[] = [];
  private traced = 0;
  private dropped = 0;

  constructor(private readonly report: (stages: StartStages) => void) {}

  started(start: HintedStart): void {
    this.pending.push(start);
    if (this.pending.length > MAX_PENDING) {
      this.pending.shift();
      this.dropped += 1;
    }
  }

  /** A publish read its sources at `snapshotAt` and had the file in place at `writtenAt`. */
  published(snapshotAt: number, writtenAt: number): void {
    let carried = 0;
    while (carried < this.pending.length && this.pending[carried]!.hintedAt <= snapshotAt) {
      const start = this.pending[carried]!;
      this.report({
        deliveryMs: start.deliveryMs,
        hintMs: start.hintedAt - start.seenAt,
        queueMs: snapshotAt - start.hintedAt,
        publishMs: writtenAt - snapshotAt,
      });
      carried += 1;
    }
    if (carried === 0) return;
    this.pending = this.pending.slice(carried);
    this.traced += carried;
  }

  stats(): StartTraceStats {
    return { traced: this.traced, pending: this.pending.length, dropped: this.dropped };
  }
}
