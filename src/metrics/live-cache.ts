/**
 * The recent window of samples per container, for snapshots to new websocket subscribers.
 * An lru-cache bounded in entries and in (estimated) bytes; an entry expires when its container
 * has not been sampled for a whole window, so vanished containers leave by themselves: stale
 * entries are purged once per batch of samples (and when stats are read), rather than by
 * lru-cache's autopurge, which arms a timer per set (a thousand timers per tick).
 *
 * The window is kept relative to the local clock, not to the newest sample: a sample stamped in
 * the future (a skewed sender) must not push the real history out. Such samples are refused, and
 * each entry's size counts the sample's actual strings, so the byte bound holds for any input.
 */
import { LRUCache } from 'lru-cache';
import type { Sample } from './sample.js';

/** In-memory cost of one sample's fixed part (an object of 22 fields, numbers inline). */
export const SAMPLE_BYTES = 400;
/** A sample stamped further ahead of the local clock is refused. */
export const FUTURE_TOLERANCE_MS = 30_000;

/** The fixed part plus its strings (two bytes a character, as V8 may hold them). */
export function sampleBytes(sample: Sample): number {
  const strings =
    sample.containerId.length +
    sample.deploymentId.length +
    (sample.nodeId?.length ?? 0) +
    (sample.serviceId?.length ?? 0) +
    (sample.taskId?.length ?? 0);
  return SAMPLE_BYTES + 2 * strings;
}

interface Entry {
  readonly deploymentId: string;
  samples: Sample[];
  bytes: number;
}

export class LiveCache {
  private readonly cache: LRUCache<string, Entry>;
  /** deployment id → its containers in the cache, for snapshots without a scan. */
  private readonly byDeployment = new Map<string, Set<string>>();

  private refusedFuture = 0;

  /** `now` is the clock of expiry, `wallClock` the clock samples are stamped with (for tests). */
  constructor(
    private readonly options: {
      windowMs: number;
      maxContainers: number;
      maxBytes: number;
      now?: () => number;
      wallClock?: () => number;
    },
  ) {
    this.cache = new LRUCache<string, Entry>({
      // A test's clock is read every time (lru-cache otherwise caches "now" until a timer fires).
      ...(options.now ? { perf: { now: options.now }, ttlResolution: 0 } : {}),
      max: options.maxContainers,
      maxSize: options.maxBytes,
      sizeCalculation: (entry) => Math.max(1, entry.bytes),
      ttl: options.windowMs,
      dispose: (entry, containerId) => {
        const set = this.byDeployment.get(entry.deploymentId);
        set?.delete(containerId);
        if (set?.size === 0) this.byDeployment.delete(entry.deploymentId);
      },
    });
  }

  add(samples: readonly Sample[]): void {
    const now = (this.options.wallClock ?? Date.now)();
    const cutoff = now - this.options.windowMs;
    for (const sample of samples) {
      if (sample.ts > now + FUTURE_TOLERANCE_MS) {
        this.refusedFuture += 1;
        continue;
      }
      if (sample.ts <= cutoff) continue;
      const current = this.cache.get(sample.containerId);
      // One pass keeps the window and sums its bytes.
      const kept: Sample[] = [];
      let bytes = sampleBytes(sample);
      if (current && current.deploymentId === sample.deploymentId) {
        for (const s of current.samples) {
          if (s.ts <= cutoff) continue;
          kept.push(s);
          bytes += sampleBytes(s);
        }
      }
      kept.push(sample);
      // set() again: refreshes the TTL and recomputes the size.
      this.cache.set(sample.containerId, { deploymentId: sample.deploymentId, samples: kept, bytes });
      let set = this.byDeployment.get(sample.deploymentId);
      if (!set) this.byDeployment.set(sample.deploymentId, (set = new Set()));
      set.add(sample.containerId);
    }
    this.cache.purgeStale();
  }

  /** Every cached sample of a deployment's containers, oldest first per container. */
  snapshot(deploymentId: string): Sample[] {
    const result: Sample[] = [];
    for (const containerId of this.byDeployment.get(deploymentId) ?? []) {
      const entry = this.cache.get(containerId, { updateAgeOnGet: false });
      if (entry) result.push(...entry.samples);
    }
    return result;
  }

  /** The newest sample of every cached container of a deployment. */
  latest(deploymentId: string): Sample[] {
    const result: Sample[] = [];
    for (const containerId of this.byDeployment.get(deploymentId) ?? []) {
      const samples = this.cache.get(containerId, { updateAgeOnGet: false })?.samples;
      const last = samples?.[samples.length - 1];
      if (last) result.push(last);
    }
    return result;
  }

  stats(): { containers: number; deployments: number; bytes: number; maxBytes: number; refusedFuture: number } {
    this.cache.purgeStale();
    return {
      containers: this.cache.size,
      deployments: this.byDeployment.size,
      bytes: this.cache.calculatedSize,
      maxBytes: this.options.maxBytes,
      refusedFuture: this.refusedFuture,
    };
  }
}
