/**
 * Whether tasks' containers have a healthcheck, learned from container inspects and kept per
 * healthcheck source (SwarmTask.healthcheckSource: the image the task's spec names and the spec's
 * own healthcheck). It lets a local container's `start` event publish its task with no call:
 *
 * - no healthcheck: a started container serves, and the task list held already has the task's
 *   addresses (the managers allocate them before the task starts);
 * - a healthcheck: the start publishes nothing, its `health_status: healthy` event will;
 * - not known yet: one inspect, as before, which teaches the answer for every task of that source.
 *
 * Under churn that inspect queued behind everything else the daemon did (bench/README.md,
 * swarm-scale): skipping it is what brings a start to the routes file within a second.
 *
 * An image reference without a digest can be moved to another image (one that gained a
 * HEALTHCHECK): what is learned ends after TTL_MS, so such a change is seen at the next inspect.
 */
import { LRUCache } from 'lru-cache';

/** Far more sources (images × spec healthchecks) than a cluster runs at once. */
const MAX_SOURCES = 4_096;
const TTL_MS = 10 * 60_000;

export class HealthcheckMemory {
  private readonly known: LRUCache<string, boolean>;

  constructor(now?: () => number) {
    this.known = new LRUCache<string, boolean>({
      max: MAX_SOURCES,
      ttl: TTL_MS,
      // A clock given (tests) is read on every get: no cached reading.
      ...(now ? { perf: { now }, ttlResolution: 0 } : {}),
    });
  }

  /** What an inspect of a task's container showed (nothing is learned without a source or an answer). */
  learn(source: string | undefined, hasHealthcheck: boolean | undefined): void {
    if (source !== undefined && hasHealthcheck !== undefined) this.known.set(source, hasHealthcheck);
  }

  /** Whether containers of this source have a healthcheck; undefined when not known (inspect one). */
  hasHealthcheck(source: string | undefined): boolean | undefined {
    return source === undefined ? undefined : this.known.get(source);
  }

  get size(): number {
    return this.known.size;
  }
}
