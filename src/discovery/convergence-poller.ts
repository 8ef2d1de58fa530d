/**
 * Polls the tasks of the services that are converging (after a service event or a local
 * container event: Swarm emits no task events), for all of them at once: one `GET /tasks` per
 * tick, filtered to the services due, whatever their number. A rolling update of a hundred
 * services costs the managers at most one call per `fastMs`, not one per service.
 *
 * Each service has its own cadence: `fastMs` while its tasks change and for STEADY_POLLS polls
 * after, then doubling up to `slowMs` while they stay the same without having converged (a task
 * `preparing` or `pending` for long), and back to `fastMs` on the next change or event. An event
 * that arrives while a poll is in flight is not answered by that poll (it may predate the event):
 * the service stays due for the next tick. A service leaves the poll when it converges
 * (running tasks = desired replicas) or at its deadline, after which the resync catches up.
 */
import type { Logger } from '../lib/logger.js';
import type { SwarmTask } from './topology.js';

export interface ConvergencePollerOptions {
  /** The cadence while a service's tasks change, and the least time between two calls. */
  readonly fastMs: number;
  /** The longest wait between two polls of a service whose tasks stay the same. */
  readonly slowMs: number;
  /** A service that has not converged after this long leaves the poll. */
  readonly deadlineMs: number;
  /** Above this many services due at once, one unfiltered call (every running task) is cheaper to ask. */
  readonly maxFiltered: number;
}

export const DEFAULT_POLLER_OPTIONS: ConvergencePollerOptions = {
  fastMs: 200,
  // A task that waited (preparing, pending) is still seen within a second once it moves on.
  slowMs: 1_000,
  deadlineMs: 120_000,
  maxFiltered: 50,
};

export interface ConvergencePollerDeps {
  /** Running-desired tasks of these services (undefined: of every service), one API call. */
  listTasks(serviceIds: readonly string[] | undefined): Promise<readonly SwarmTask[]>;
  /** The tasks the topology holds for the service now. */
  current(serviceId: string): readonly SwarmTask[] | undefined;
  /** Whether the service is (still) in the topology and has converged with these tasks. */
  converged(serviceId: string, tasks: readonly SwarmTask[]): boolean;
  isKnown(serviceId: string): boolean;
  /** New task lists of the services that changed, seen as caused at `causedAt`, from a call asked at `askedAt`. */
  apply(changes: ReadonlyMap<string, readonly SwarmTask[]>, causedAt: number, askedAt: number): void;
  /** The tasks held for these services now agree with a list asked at `askedAt` (changed or not). */
  answered?(serviceIds: readonly string[], askedAt: number): void;
  log: Logger;
  now?: () => number;
}

interface Converging {
  deadline: number;
  causedAt: number;
  dueAt: number;
  intervalMs: number;
  /** Polls in a row that found the tasks unchanged. */
  unchanged: number;
  /** When an event last named the service. */
  kickedAt: number;
}

/** Unchanged polls at the fast cadence before backing off: about a second of stillness. */
const STEADY_POLLS = 5;

export class ConvergencePoller {
  private readonly converging = new Map<string, Converging>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;
  private lastTickAt = Number.NEGATIVE_INFINITY;
  private readonly now: () => number;

  constructor(
    private readonly options: ConvergencePollerOptions,
    private readonly deps: ConvergencePollerDeps,
  ) {
    this.now = deps.now ?? (() => performance.now());
  }

  get size(): number {
    return this.converging.size;
  }

  /** Polls the service from now on (again at the fast cadence, if it was already polled). */
  start(serviceId: string, causedAt: number): void {
    if (this.stopped) return;
    const now = this.now();
    const entry = this.converging.get(serviceId);
    if (entry) {
      entry.deadline = now + this.options.deadlineMs;
      entry.causedAt = Math.min(entry.causedAt, causedAt);
      entry.intervalMs = this.options.fastMs;
      entry.unchanged = 0;
      entry.dueAt = now;
      entry.kickedAt = now;
    } else {
      this.converging.set(serviceId, {
        deadline: now + this.options.deadlineMs,
        causedAt,
        dueAt: now,
        intervalMs: this.options.fastMs,
        unchanged: 0,
        kickedAt: now,
      });
    }
    this.schedule();
  }

  forget(serviceId: string): void {
    this.converging.delete(serviceId);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.converging.clear();
  }

  /** The next tick: when the earliest service is due, but never sooner than fastMs after the last. */
  private schedule(): void {
    if (this.running || this.stopped || this.converging.size === 0) return;
    let due = Number.POSITIVE_INFINITY;
    for (const entry of this.converging.values()) due = Math.min(due, entry.dueAt);
    const at = Math.max(due, this.lastTickAt + this.options.fastMs);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), Math.max(0, at - this.now()));
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    this.timer = undefined;
    if (this.running || this.stopped) return;
    this.running = true;
    const now = this.now();
    this.lastTickAt = now;
    // Due now, or within the next fast interval: they share this call instead of making another.
    const due = [...this.converging].filter(([, entry]) => entry.dueAt <= now + this.options.fastMs).map(([id]) => id);
    try {
      const tasks = await this.deps.listTasks(due.length <= this.options.maxFiltered ? due : undefined);
      this.settle(due, groupByService(tasks), now);
    } catch (error) {
      this.deps.log.debug({ err: error, services: due.length }, 'task poll failed');
      for (const id of due) this.later(id, this.now(), false, now);
    } finally {
      this.running = false;
      this.schedule();
    }
  }

  private settle(due: readonly string[], byService: ReadonlyMap<string, SwarmTask[]>, askedAt: number): void {
    const now = this.now();
    const changes = new Map<string, readonly SwarmTask[]>();
    const answered: string[] = [];
    let causedAt = Number.POSITIVE_INFINITY;
    for (const id of due) {
      const entry = this.converging.get(id);
      if (!entry) continue;
      if (!this.deps.isKnown(id)) {
        this.converging.delete(id);
        continue;
      }
      answered.push(id);
      const tasks = byService.get(id) ?? [];
      const changed = !sameTasks(this.deps.current(id) ?? [], tasks);
      if (changed) {
        changes.set(id, tasks);
        causedAt = Math.min(causedAt, entry.causedAt);
        entry.causedAt = now;
      }
      if (this.deps.converged(id, tasks)) this.converging.delete(id);
      else if (now > entry.deadline) {
        this.deps.log.info({ serviceId: id }, 'service did not converge before the deadline; the resync will catch up');
        this.converging.delete(id);
      } else this.later(id, now, changed, askedAt);
    }
    if (changes.size > 0) this.deps.apply(changes, causedAt, askedAt);
    this.deps.answered?.(answered, askedAt);
  }

  /** The service's next poll: soon after a change or event, later and later while nothing changes. */
  private later(id: string, now: number, changed: boolean, askedAt: number): void {
    const entry = this.converging.get(id);
    if (!entry) return;
    if (entry.kickedAt >= askedAt) {
      // Named by an event since this poll was asked: its answer may predate the event.
      entry.dueAt = now;
      return;
    }
    entry.unchanged = changed ? 0 : entry.unchanged + 1;
    entry.intervalMs =
      entry.unchanged < STEADY_POLLS ? this.options.fastMs : Math.min(entry.intervalMs * 2, this.options.slowMs);
    entry.dueAt = now + entry.intervalMs;
  }
}

function groupByService(tasks: readonly SwarmTask[]): Map<string, SwarmTask[]> {
  const byService = new Map<string, SwarmTask[]>();
  for (const task of tasks) {
    const list = byService.get(task.serviceId);
    if (list) list.push(task);
    else byService.set(task.serviceId, [task]);
  }
  return byService;
}

export function sameTasks(a: readonly SwarmTask[], b: readonly SwarmTask[]): boolean {
  if (a.length !== b.length) return false;
  const key = (t: SwarmTask) => `${t.id}:${t.state}:${t.addresses.map((x) => x.ip).join(',')}`;
  const keys = new Set(a.map(key));
  return b.every((t) => keys.has(key(t)));
}
