/**
 * Tasks this node's daemon has seen start (and become healthy, where the container has a
 * healthcheck) before the managers' task list says so.
 *
 * Under churn `GET /tasks` answers in seconds, and the agent reports a task's state to the managers
 * in batches, so a task can serve for a while before any task list shows it `running`. The local
 * container's `start` (or `health_status: healthy`) event, and one inspect of that container, give
 * the same facts at once: its task, service, node and addresses. A hint holds them until the task
 * list agrees, and task lists are merged with the hints so that a slower answer never takes a
 * started task back:
 *
 * - a task the list shows in a state before `running` is shown `running`;
 * - a task the list omits stays when the list was asked before the hint was recorded (the answer
 *   may predate the task), and goes when it was asked after (the task was told to stop: its desired
 *   state is no longer `running`);
 * - a task the list shows `running`, or in any state after it, ends the hint; so does the
 *   container's death and HINT_TTL_MS, after which the managers' word stands.
 */
import type { SwarmTask } from './topology.js';

/** After this long without the managers agreeing, a hint is dropped and their task list stands. */
export const HINT_TTL_MS = 30_000;

/** Swarm task states before `running` (api/types/swarm/task.go): a list showing one of them lags. */
const BEFORE_RUNNING = new Set([
  'new',
  'allocated',
  'pending',
  'assigned',
  'accepted',
  'preparing',
  'ready',
  'starting',
]);

interface Hint {
  readonly task: SwarmTask;
  /** performance.now() when the daemon's event was seen. */
  readonly seenAt: number;
}

export interface TaskStartHintStats {
  /** Hints recorded from local container events. */
  readonly recorded: number;
  /** Hints that a task list confirmed (it showed the task running, or later). */
  readonly confirmed: number;
  /** Times a merge kept a started task that a lagging list showed before `running` or omitted. */
  readonly applied: number;
  readonly expired: number;
  readonly pending: number;
}

export class TaskStartHints {
  private readonly byService = new Map<string, Map<string, Hint>>();
  private readonly counters = { recorded: 0, confirmed: 0, applied: 0, expired: 0 };

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** A started task, its state `running`. Returns false when it was already hinted. */
  record(task: SwarmTask, seenAt: number): boolean {
    let hints = this.byService.get(task.serviceId);
    if (!hints) this.byService.set(task.serviceId, (hints = new Map<string, Hint>()));
    if (hints.has(task.id)) return false;
    hints.set(task.id, { task: { ...task, state: 'running' }, seenAt });
    this.counters.recorded += 1;
    return true;
  }

  /** The container stopped: the task list decides from now on. */
  drop(serviceId: string, taskId: string): void {
    const hints = this.byService.get(serviceId);
    if (!hints?.delete(taskId)) return;
    if (hints.size === 0) this.byService.delete(serviceId);
  }

  forgetService(serviceId: string): void {
    this.byService.delete(serviceId);
  }

  /** Whether the service has started tasks that no task list has confirmed yet. */
  pending(serviceId: string): boolean {
    return this.byService.has(serviceId);
  }

  /** Services with hints (for an unfiltered list, which names only services with tasks). */
  services(): IterableIterator<string> {
    return this.byService.keys();
  }

  /**
   * The service's tasks from a list asked at `askedAt` (performance.now() before the call), with its
   * hints applied; hints the list confirms or outdates end here.
   */
  merge(serviceId: string, listed: readonly SwarmTask[], askedAt: number): readonly SwarmTask[] {
    const hints = this.byService.get(serviceId);
    if (!hints) return listed;
    const now = this.now();
    const merged: SwarmTask[] = [];
    const seen = new Set<string>();
    for (const task of listed) {
      seen.add(task.id);
      const hint = hints.get(task.id);
      if (!hint) {
        merged.push(task);
      } else if (!BEFORE_RUNNING.has(task.state)) {
        hints.delete(task.id);
        this.counters.confirmed += 1;
        merged.push(task);
      } else if (now - hint.seenAt > HINT_TTL_MS) {
        hints.delete(task.id);
        this.counters.expired += 1;
        merged.push(task);
      } else {
        this.counters.applied += 1;
        // The list's own fields (addresses, container) are the managers' word; only the state lags.
        merged.push({ ...task, state: 'running' });
      }
    }
    for (const [taskId, hint] of hints) {
      if (seen.has(taskId)) continue;
      if (askedAt > hint.seenAt || now - hint.seenAt > HINT_TTL_MS) {
        // Asked after the task started and not listed: its desired state is no longer running.
        hints.delete(taskId);
        this.counters.expired += 1;
      } else {
        this.counters.applied += 1;
        merged.push(hint.task);
      }
    }
    if (hints.size === 0) this.byService.delete(serviceId);
    return merged;
  }

  stats(): TaskStartHintStats {
    let pending = 0;
    for (const hints of this.byService.values()) pending += hints.size;
    return { ...this.counters, pending };
  }
}
