/**
 * Local tasks told to stop before the managers' task list says so: the mirror of TaskStartHints.
 *
 * Swarm stops a task by setting its desired state to `shutdown`; the task's agent then sends the
 * container its stop signal, and the container serves until it exits (its own drain). The router
 * learns of the desired state only from a task list, which under churn answers in seconds: an old
 * server could still be published when its container exits. The container's `kill` event with its
 * stop signal arrives at once, so the task leaves the routes then, while it still serves.
 *
 * A hint hides the task from every task list held or merged until the managers agree:
 *
 * - a list that omits the task (asked with `desired-state=running`) confirms the hint;
 * - a list asked before the hint still shows it: the hint stands (the answer predates the stop);
 * - a list asked after the hint that still shows the task refutes it. The managers set the desired
 *   state before the agent sends the signal, so a stop by Swarm is never listed after its `kill`;
 *   a signal sent by hand (`docker kill -s TERM` to a process that ignores it) is, and the task
 *   comes back with that list;
 * - after HINT_TTL_MS without a list, the managers' word stands.
 *
 * The container's death does not end a hint: the held list may still show the task until a list
 * confirms it, and the dead container must not come back meanwhile.
 */
import type { SwarmTask } from './topology.js';

/** After this long without a list, a stop hint is dropped and the managers' task list stands. */
export const STOP_HINT_TTL_MS = 30_000;

export interface TaskStopHintStats {
  /** Stop signals seen for tasks of watched services. */
  readonly recorded: number;
  /** Hints a list confirmed (it no longer showed the task). */
  readonly confirmed: number;
  /** Hints a list asked after the signal refuted (the task still desired running). */
  readonly refuted: number;
  readonly expired: number;
  readonly pending: number;
}

export class TaskStopHints {
  /** service id → task id → performance.now() when the stop signal was seen. */
  private readonly byService = new Map<string, Map<string, number>>();
  private readonly counters = { recorded: 0, confirmed: 0, refuted: 0, expired: 0 };

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** The task's container was sent its stop signal at `seenAt`. False when already hinted. */
  record(serviceId: string, taskId: string, seenAt: number): boolean {
    let hints = this.byService.get(serviceId);
    if (!hints) this.byService.set(serviceId, (hints = new Map<string, number>()));
    if (hints.has(taskId)) return false;
    hints.set(taskId, seenAt);
    this.counters.recorded += 1;
    return true;
  }

  forgetService(serviceId: string): void {
    this.byService.delete(serviceId);
  }

  /** Whether the service has stopping tasks that no task list has confirmed yet. */
  pending(serviceId: string): boolean {
    return this.byService.has(serviceId);
  }

  services(): IterableIterator<string> {
    return this.byService.keys();
  }

  /** The task list held now without the tasks told to stop. */
  applyTo(serviceId: string, held: readonly SwarmTask[]): readonly SwarmTask[] {
    const hints = this.byService.get(serviceId);
    if (!hints || !held.some((task) => hints.has(task.id))) return held;
    return held.filter((task) => !hints.has(task.id));
  }

  /**
   * The service's tasks from a list asked at `askedAt` (performance.now() before the call), without
   * those told to stop; hints the list confirms, refutes or outlives end here.
   */
  merge(serviceId: string, listed: readonly SwarmTask[], askedAt: number): readonly SwarmTask[] {
    const hints = this.byService.get(serviceId);
    if (!hints) return listed;
    const now = this.now();
    const shown = new Set(listed.map((task) => task.id));
    for (const [taskId, seenAt] of hints) {
      if (!shown.has(taskId)) {
        hints.delete(taskId);
        this.counters.confirmed += 1;
      } else if (askedAt > seenAt) {
        hints.delete(taskId);
        this.counters.refuted += 1;
      } else if (now - seenAt > STOP_HINT_TTL_MS) {
        hints.delete(taskId);
        this.counters.expired += 1;
      }
    }
    if (hints.size === 0) {
      this.byService.delete(serviceId);
      return listed;
    }
    return listed.filter((task) => !hints.has(task.id));
  }

  stats(): TaskStopHintStats {
    let pending = 0;
    for (const hints of this.byService.values()) pending += hints.size;
    return { ...this.counters, pending };
  }
}
