/**
 * Tasks seen serving (started; healthy, where the container has a healthcheck) before the
 * managers' task list says so: by this node's daemon, or announced by another node's.
 *
 * Under churn `GET /tasks` answers in seconds, and the agent reports a task's state to the managers
 * in batches, so a task can serve for a while before any task list shows it `running`. The local
 * container's `start` (or `health_status: healthy`) event gives the same facts at once: with the
 * task list held when that list already shows the task on this node with its addresses and the
 * task's image is known to have no healthcheck (recordListed, healthcheck-memory.ts), else with one
 * inspect of that container (record): its task, service, node and addresses. A hint holds them until the task
 * list agrees, and task lists are merged with the hints so that a slower answer never takes a
 * started task back:
 *
 * - a task the list shows in a state before `running` is shown `running`;
 * - a task the list omits stays when the list was asked before the hint was recorded (the answer
 *   may predate the task), and goes when it was asked after (the task was told to stop: its desired
 *   state is no longer `running`);
 * - a task the list shows in a state after `running` (failed, shutdown...) ends the hint; so does
 *   the container's death, and the hint's TTL, after which the managers' word stands;
 * - a task the list shows `running` confirms the hint, which then stays CONFIRMED_KEEP_MS more: a
 *   list answered later but asked earlier (the reconcile's three calls, a poll in flight meanwhile)
 *   can still show the task before `running`, and states only move forward, so such a list is
 *   stale. Ending the hint at once let it take a serving task out of the routes until the next
 *   poll (bench/README.md, swarm-scale).
 *
 * The TTL of a local hint is long (LOCAL_HINT_TTL_MS): under churn the agent records `running`
 * only when the daemon answers its start call, which at 450 services × 2 came 77 s after the
 * container's `start` event at p99 (bench/README.md, swarm-scale), and a hint that ends while the list still lags takes a serving task out of the routes until the
 * list catches up. A local hint has a better end than time: its container's `die`, `kill` or
 * `stop` event (the watcher drops it), and the loss of the events stream, after which every local
 * hint ends (dropLocal) since such an event may have been missed. An announced hint has neither,
 * so it keeps HINT_TTL_MS.
 *
 * Tasks of other nodes are announced through Redis (task-serving-channel.ts): an announcement
 * only names a task, so it can only promote a task a list shows on that node (with that
 * container, when the list knows it) in a state before `running`. It waits for such a list up to
 * HINT_TTL_MS; at most MAX_ANNOUNCED wait at once.
 */
import type { ServingClaim } from './task-serving-channel.js';
import type { SwarmTask } from './topology.js';

/** After this long without the managers agreeing, an announced hint ends and their task list stands. */
export const HINT_TTL_MS = 30_000;
/**
 * The same for a hint from this node's own container events: only a backstop (a container event
 * the daemon dropped), since the container's own events and the stream's loss end it.
 */
export const LOCAL_HINT_TTL_MS = 300_000;

/** Longer than any task list took to answer under churn (6 s at p99 at 450 services × 2). */
export const CONFIRMED_KEEP_MS = 30_000;

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

/** Whether a task list showing this state lags behind a task that serves. */
export function beforeRunning(state: string): boolean {
  return BEFORE_RUNNING.has(state);
}

/**
 * How long a task whose container ended refuses new hints: longer than any call in flight (the
 * watcher's calls time out after 15 s), so an inspect asked before the end and answered after it
 * cannot bring the task back.
 */
export const ENDED_KEEP_MS = 60_000;

/** Announcements waiting for their task to be listed: far more than the tasks a cluster starts in HINT_TTL_MS. */
const MAX_ANNOUNCED = 10_000;

interface Announced {
  readonly claim: ServingClaim;
  readonly seenAt: number;
}

interface Hint {
  readonly task: SwarmTask;
  /** performance.now() when the daemon's event was seen. */
  readonly seenAt: number;
  /** From this node's container events (else from another node's announcement). */
  readonly local: boolean;
  /** When a task list first showed the task running (performance.now()). */
  confirmedAt?: number;
}

const ttlOf = (hint: Hint) => (hint.local ? LOCAL_HINT_TTL_MS : HINT_TTL_MS);

export interface TaskStartHintStats {
  /** Hints recorded: from local container events, and from announcements that found their task. */
  readonly recorded: number;
  /** Of those, local ones taken from the task list held, with no container inspect. */
  readonly fromList: number;
  /** Of those, local ones taken from the managers' record of that one task (GET /tasks/{id}). */
  readonly fromTask: number;
  /** Hints refused because the task's container had ended meanwhile (an answer that came after its end). */
  readonly refusedEnded: number;
  /** Hints that a task list confirmed (it showed the task running, or later). */
  readonly confirmed: number;
  /** Times a merge kept a started task that a lagging list showed before `running` or omitted. */
  readonly applied: number;
  /** Announcements of other nodes received, and those that promoted a listed task. */
  readonly announced: number;
  readonly announcementsUsed: number;
  readonly expired: number;
  readonly pending: number;
  /** Announcements waiting for a list to show their task. */
  readonly waiting: number;
}

export class TaskStartHints {
  private readonly byService = new Map<string, Map<string, Hint>>();
  /** Other nodes' announcements by task id, oldest first. */
  private readonly announced = new Map<string, Announced>();
  /** Tasks whose container ended, with when (oldest first): no hint may start them again. */
  private readonly endedAt = new Map<string, number>();
  private readonly counters = {
    recorded: 0,
    fromList: 0,
    fromTask: 0,
    refusedEnded: 0,
    confirmed: 0,
    applied: 0,
    expired: 0,
    announced: 0,
    announcementsUsed: 0,
  };

  constructor(private readonly now: () => number = () => performance.now()) {}

  /**
   * A task this node's daemon started, its state `running`. Returns false when it was already
   * hinted, or when `latest` (the service's task list held, and when that list was asked) was asked after the
   * start and so already speaks for the task: a hint adds nothing when it shows the task running,
   * and would bring back a stopped task when it omits it (an inspect that answered before the stop
   * and arrived after the list). Only a list still showing the task before `running` needs one.
   */
  record(task: SwarmTask, seenAt: number, latest?: { tasks: readonly SwarmTask[]; askedAt: number }): boolean {
    if (latest !== undefined && latest.askedAt > seenAt) {
      const listed = latest.tasks.find((t) => t.id === task.id);
      if (listed === undefined || !BEFORE_RUNNING.has(listed.state)) return false;
    }
    return this.add(task, seenAt, true);
  }

  /**
   * The same, from the managers' record of that one task (GET /tasks/{id}), asked beside the
   * container's inspect when the list held does not show the task yet. The caller has checked that
   * the record shows the task here, serving, with its addresses.
   */
  recordFromTask(task: SwarmTask, seenAt: number, latest: { tasks: readonly SwarmTask[]; askedAt: number }): boolean {
    if (!this.record(task, seenAt, latest)) return false;
    this.counters.fromTask += 1;
    return true;
  }

  /**
   * This node's container `containerId` of a task that `listed` (the task list held) shows before
   * `running` now serves (its start, with no healthcheck; or its first healthy check): hinted with
   * the list's own fields and no inspect. False when the list shows another container for the task,
   * or the task running already (nothing to hint), or the task is hinted already.
   */
  recordListed(listed: SwarmTask, containerId: string, seenAt: number): boolean {
    if (!beforeRunning(listed.state)) return false;
    if (listed.containerId !== undefined && listed.containerId !== containerId) return false;
    if (!this.add({ ...listed, containerId }, seenAt, true)) return false;
    this.counters.fromList += 1;
    return true;
  }

  /**
   * The events stream of this node's daemon was lost: a `die` may have been missed, so every local
   * hint ends and the task lists decide (the announced ones keep their TTL).
   */
  dropLocal(): void {
    for (const [serviceId, hints] of this.byService) {
      for (const [taskId, hint] of hints) if (hint.local) hints.delete(taskId);
      if (hints.size === 0) this.byService.delete(serviceId);
    }
  }

  /** Another node says this task serves; used once a list shows it there before `running`. */
  announce(claim: ServingClaim, seenAt: number): void {
    this.counters.announced += 1;
    this.announced.delete(claim.taskId);
    this.announced.set(claim.taskId, { claim, seenAt });
    if (this.announced.size > MAX_ANNOUNCED) this.announced.delete(this.announced.keys().next().value!);
  }

  /** The container was sent a signal or stopped: the task list decides from now on. */
  drop(serviceId: string, taskId: string): void {
    const hints = this.byService.get(serviceId);
    if (!hints?.delete(taskId)) return;
    if (hints.size === 0) this.byService.delete(serviceId);
  }

  /**
   * The container ended (died): as drop, and an answer still in flight (an inspect asked before
   * the end) hints nothing for ENDED_KEEP_MS. A task's container never runs again.
   */
  ended(serviceId: string, taskId: string): void {
    const now = this.now();
    this.endedAt.delete(taskId);
    this.endedAt.set(taskId, now);
    for (const [endedId, at] of this.endedAt) {
      if (now - at <= ENDED_KEEP_MS) break;
      this.endedAt.delete(endedId);
    }
    this.drop(serviceId, taskId);
  }

  forgetService(serviceId: string): void {
    this.byService.delete(serviceId);
  }

  /** Whether the service has started tasks that no task list has confirmed yet. */
  pending(serviceId: string): boolean {
    const hints = this.byService.get(serviceId);
    if (hints === undefined) return false;
    for (const hint of hints.values()) if (hint.confirmedAt === undefined) return true;
    return false;
  }

  /** Services with hints (for an unfiltered list, which names only services with tasks). */
  services(): IterableIterator<string> {
    return this.byService.keys();
  }

  /**
   * The task list held now (already merged), with the hints recorded since applied: a started task
   * added or shown running. Nothing is confirmed or expired here: only a new list from the managers
   * (merge) can say the hints are no longer needed.
   */
  applyTo(serviceId: string, held: readonly SwarmTask[]): readonly SwarmTask[] {
    if (this.announced.size > 0) this.useAnnouncements(serviceId, held, this.now());
    const hints = this.byService.get(serviceId);
    if (!hints) return held;
    const applied: SwarmTask[] = [];
    for (const task of held) {
      const hint = hints.get(task.id);
      applied.push(hint !== undefined && BEFORE_RUNNING.has(task.state) ? { ...task, state: 'running' } : task);
    }
    for (const [taskId, hint] of hints)
      if (hint.confirmedAt === undefined && !held.some((task) => task.id === taskId)) applied.push(hint.task);
    return applied;
  }

  /**
   * The service's tasks from a list asked at `askedAt` (performance.now() before the call), with its
   * hints applied; hints the list confirms or outdates end here.
   */
  merge(serviceId: string, listed: readonly SwarmTask[], askedAt: number): readonly SwarmTask[] {
    const now = this.now();
    if (this.announced.size > 0) this.useAnnouncements(serviceId, listed, now);
    const hints = this.byService.get(serviceId);
    if (!hints) return listed;
    const merged: SwarmTask[] = [];
    const seen = new Set<string>();
    for (const task of listed) {
      seen.add(task.id);
      let hint = hints.get(task.id);
      // Confirmed long enough ago that no list still in flight predates it: the list decides.
      if (hint?.confirmedAt !== undefined && now - hint.confirmedAt > CONFIRMED_KEEP_MS) {
        hints.delete(task.id);
        hint = undefined;
      }
      if (!hint) {
        merged.push(task);
      } else if (task.state === 'running') {
        if (hint.confirmedAt === undefined) {
          hint.confirmedAt = now;
          this.counters.confirmed += 1;
        }
        merged.push(task);
      } else if (!BEFORE_RUNNING.has(task.state)) {
        // Past running (failed, shutdown...): the managers' word.
        if (hint.confirmedAt === undefined) this.counters.confirmed += 1;
        hints.delete(task.id);
        merged.push(task);
      } else if (hint.confirmedAt === undefined && now - hint.seenAt > ttlOf(hint)) {
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
      if (askedAt > hint.seenAt || now - hint.seenAt > ttlOf(hint)) {
        // Asked after the task started and not listed: its desired state is no longer running.
        hints.delete(taskId);
        if (hint.confirmedAt === undefined) this.counters.expired += 1;
      } else {
        this.counters.applied += 1;
        merged.push(hint.task);
      }
    }
    if (hints.size === 0) this.byService.delete(serviceId);
    return merged;
  }

  /** Announced tasks the list shows on their node before `running` become hints (their fields the list's). */
  private useAnnouncements(serviceId: string, listed: readonly SwarmTask[], now: number): void {
    for (const task of listed) {
      const announced = this.announced.get(task.id);
      if (announced === undefined) continue;
      const { claim, seenAt } = announced;
      if (now - seenAt > HINT_TTL_MS) {
        this.announced.delete(task.id);
        continue;
      }
      if (claim.serviceId !== serviceId || claim.nodeId !== task.nodeId) continue;
      if (task.containerId !== undefined && task.containerId !== claim.containerId) continue;
      this.announced.delete(task.id);
      if (!BEFORE_RUNNING.has(task.state)) continue;
      if (this.add({ ...task, containerId: claim.containerId }, seenAt, false)) this.counters.announcementsUsed += 1;
    }
    // Announcements that never met their task (another cluster's, or forged) leave with time.
    for (const [taskId, { seenAt }] of this.announced) {
      if (now - seenAt <= HINT_TTL_MS) break;
      this.announced.delete(taskId);
    }
  }

  private add(task: SwarmTask, seenAt: number, local: boolean): boolean {
    const endedAt = this.endedAt.get(task.id);
    if (endedAt !== undefined && this.now() - endedAt <= ENDED_KEEP_MS) {
      this.counters.refusedEnded += 1;
      return false;
    }
    let hints = this.byService.get(task.serviceId);
    if (!hints) this.byService.set(task.serviceId, (hints = new Map<string, Hint>()));
    if (hints.has(task.id)) return false;
    hints.set(task.id, { task: { ...task, state: 'running' }, seenAt, local });
    this.counters.recorded += 1;
    return true;
  }

  stats(): TaskStartHintStats {
    let pending = 0;
    for (const hints of this.byService.values())
      for (const hint of hints.values()) if (hint.confirmedAt === undefined) pending += 1;
    return { ...this.counters, pending, waiting: this.announced.size };
  }
}
