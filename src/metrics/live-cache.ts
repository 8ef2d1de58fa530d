/**
 * The recent window of samples per container, for snapshots to new websocket subscribers.
 * An lru-cache bounded in entries and in (estimated) bytes; an entry expires when its container
 * has not been sampled for a whole window, so vanished containers leave by themselves: stale
 * entries are purged once per batch of samples (and when stats are read), rather than by
 * lru-cache's autopurge, which arms a timer per set (a thousand timers per tick).
 */
import { LRUCache } from 'lru-cache';
import type { Sample } from './sample.js';

/** Rough in-memory cost of one sample (20 fields of an object): sizes the byte bound. */
export const SAMPLE_BYTES = 400;

interface Entry {
  readonly deploymentId: string;
  samples: Sample[];
}

export class LiveCache {
  private readonly cache: LRUCache<string, Entry>;
  /** deployment id → its containers in the cache, for snapshots without a scan. */
  private readonly byDeployment = new Map<string, Set<string>>();

  /** `now` is the clock of expiry, for tests; performance.now by default. */
  constructor(private readonly options: { windowMs: number; maxContainers: number; maxBytes: number; now?: () => number }) {
    this.cache = new LRUCache<string, Entry>({
      // A test's clock is read every time (lru-cache otherwise caches "now" until a timer fires).
      ...(options.now ? { perf: { now: options.now }, ttlResolution: 0 } : {}),
      max: options.maxContainers,
      maxSize: options.maxBytes,
      sizeCalculation: (entry) => Math.max(1, entry.samples.length * SAMPLE_BYTES),
      ttl: options.windowMs,
      dispose: (entry, containerId) => {
        const set = this.byDeployment.get(entry.deploymentId);
        set?.delete(containerId);
        if (set?.size === 0) this.byDeployment.delete(entry.deploymentId);
      },
    });
  }

  add(samples: readonly Sample[]): void {
    const cutoffFor = (sample: Sample) => sample.ts - this.options.windowMs;
    for (const sample of samples) {
      const current = this.cache.get(sample.containerId);
      const kept = current && current.deploymentId === sample.deploymentId ? current.samples.filter((s) => s.ts > cutoffFor(sample)) : [];
      kept.push(sample);
      // set() again: refreshes the TTL and recomputes the size.
      this.cache.set(sample.containerId, { deploymentId: sample.deploymentId, samples: kept });
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

  stats(): { containers: number; deployments: number; bytes: number; maxBytes: number } {
    this.cache.purgeStale();
    return { containers: this.cache.size, deployments: this.byDeployment.size, bytes: this.cache.calculatedSize, maxBytes: this.options.maxBytes };
  }
}
