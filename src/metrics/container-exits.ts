/**
 * Restarts, as this node's Docker sees them: a deployment container that exits without having
 * been asked to stop. Swarm never restarts a container in place: it replaces the task with a new
 * container (the restart policy), so Docker's RestartCount stays 0 and the count has to come from
 * the exits themselves.
 *
 * From the container events of this node's Docker: a `kill` (what `docker stop`, a rolling
 * update, a scale-down or a service removal send first) marks the container as asked to stop;
 * an `oom` marks an OOM kill; a `die` then ends it:
 * - `requested`: a kill came first (a planned stop; not a restart);
 * - `oom`: the kernel's OOM killer ended it;
 * - `crashed`: it exited by itself with a non-zero code;
 * - `completed`: it exited by itself with code 0 (Swarm's default restart condition `any`
 *   replaces it too).
 * Everything but `requested` is a restart of the deployment. Events are input: ids, codes and
 * labels are validated, and the state kept per container is bounded and expires.
 */
import { isContainerId, isIdentifier } from '../lib/identifiers.js';
import type { ContainerRef } from './sample.js';

export type ExitReason = 'requested' | 'oom' | 'crashed' | 'completed';

export interface ContainerExit {
  readonly containerId: string;
  readonly deploymentId: string;
  /** The container as last listed (undefined: it ran too briefly to be listed). */
  readonly ref: ContainerRef | undefined;
  readonly exitCode: number | null;
  readonly reason: ExitReason;
  readonly at: number;
}

/** A stop request older than this is forgotten (a stop grace period longer than this is unheard of). */
const REQUEST_MEMORY_MS = 15 * 60_000;
/** An `oom` event counts for the `die` that follows within this long. */
const OOM_MEMORY_MS = 30_000;
const MAX_TRACKED = 10_000;

export class ContainerExits {
  private readonly stopAsked = new Map<string, number>();
  private readonly oomAt = new Map<string, number>();
  private readonly counts: Record<ExitReason, number> = { requested: 0, oom: 0, crashed: 0, completed: 0 };
  private unattributed = 0;
  private refused = 0;

  constructor(
    private readonly options: { readonly labelPrefix: string },
    private readonly deps: {
      /** The container as last listed by the collector, if it was. */
      refOf: (containerId: string) => ContainerRef | undefined;
      onExit: (exit: ContainerExit) => void;
      clock?: () => number;
    },
  ) {}

  stats() {
    return { exits: { ...this.counts }, unattributed: this.unattributed, refused: this.refused };
  }

  /** One Docker event (parsed JSON, anything). */
  handle(event: unknown): void {
    if (event === null || typeof event !== 'object') return void (this.refused += 1);
    const e = event as { Type?: unknown; Action?: unknown; Actor?: { ID?: unknown; Attributes?: unknown } };
    if (e.Type !== 'container') return;
    const id = e.Actor?.ID;
    if (!isContainerId(id)) return void (this.refused += 1);
    const attributes =
      e.Actor?.Attributes !== null && typeof e.Actor?.Attributes === 'object'
        ? (e.Actor.Attributes as Record<string, unknown>)
        : {};
    const now = (this.deps.clock ?? Date.now)();
    switch (e.Action) {
      case 'kill':
        remember(this.stopAsked, id, now);
        return;
      case 'oom':
        remember(this.oomAt, id, now);
        return;
      case 'die':
        this.died(id, attributes, now);
        return;
      default:
        return;
    }
  }

  private died(id: string, attributes: Record<string, unknown>, now: number): void {
    const asked = this.stopAsked.get(id);
    const oom = this.oomAt.get(id);
    this.stopAsked.delete(id);
    this.oomAt.delete(id);
    const raw = attributes.exitCode;
    const exitCode = typeof raw === 'string' && /^\d{1,3}$/.test(raw) ? Number(raw) : null;
    const reason: ExitReason =
      oom !== undefined && now - oom <= OOM_MEMORY_MS
        ? 'oom'
        : asked !== undefined && now - asked <= REQUEST_MEMORY_MS
          ? 'requested'
          : exitCode === 0
            ? 'completed'
            : 'crashed';
    const ref = this.deps.refOf(id);
    const labelled = attributes[`${this.options.labelPrefix}.deployment_id`];
    const deploymentId = ref?.deploymentId ?? (typeof labelled === 'string' ? labelled : undefined);
    if (deploymentId === undefined || !isIdentifier(deploymentId)) {
      // Not a deployment's (or a swarm container that was never listed, whose deployment is only
      // on its service): nothing to charge it to.
      if (reason !== 'requested') this.unattributed += 1;
      return;
    }
    this.counts[reason] += 1;
    this.deps.onExit({ containerId: id, deploymentId, ref, exitCode, reason, at: now });
  }
}

function remember(map: Map<string, number>, id: string, now: number): void {
  map.delete(id);
  map.set(id, now);
  // Oldest first (insertion order): a flood of events keeps the newest MAX_TRACKED.
  while (map.size > MAX_TRACKED) map.delete(map.keys().next().value!);
}
