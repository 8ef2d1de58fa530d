/**
 * Publishes the config into Redis for Traefik's Redis (KV) provider, under its key layout
 * (traefik/http/routers/<r>/rule, .../entrypoints/0, ...). Every key write makes Traefik rebuild
 * its whole config, so only the difference is written, in one MULTI/EXEC, and removed keys are
 * deleted explicitly. Only the instance holding the lock publishes, so two routers never
 * interleave their diffs.
 *
 * Redis is kept in step on its own clock, apart from the file: every few seconds the holder renews
 * its lock (a no-op while nothing changed) and the others try to take it, so a holder that dies
 * is replaced within the lock's TTL; a write that failed (Redis away) is retried until it lands;
 * and a Redis that comes back empty (restarted without persistence) is rewritten in full.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';
import type { DynamicConfig } from './traefik-config.js';

/** Flattens a config into Traefik KV pairs: object keys lowercased as Traefik's KV reader expects them, arrays indexed. */
export function toKeyValues(config: DynamicConfig, root: string): Map<string, string> {
  const pairs = new Map<string, string>();
  const walk = (value: unknown, prefix: string) => {
    if (Array.isArray(value)) {
      value.forEach((item, index) => walk(item, `${prefix}/${index}`));
    } else if (value !== null && typeof value === 'object') {
      // Names (of routers, services, middlewares, headers) keep their case; option keys are case-insensitive.
      const names = isNameMap(prefix);
      for (const [key, child] of Object.entries(value)) walk(child, `${prefix}/${names ? key : key.toLowerCase()}`);
    } else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      pairs.set(prefix, String(value));
    }
  };
  walk(config, root);
  return pairs;
}

/** Maps whose keys are user-chosen names rather than option names. */
function isNameMap(prefix: string): boolean {
  return /\/(routers|services|middlewares|customrequestheaders|customresponseheaders)$/.test(prefix);
}

const LOCK_TTL_MS = 15_000;
/** Lock renewal and retry period: a third of the TTL, so a live holder never loses the lock. */
export const REDIS_SYNC_MS = 5_000;

export type ConfigSource = () => DynamicConfig;

export class RedisPublisher {
  /**
   * What this instance last wrote and the config it came from: while the lock is renewed and the
   * same config is offered again, Redis is current. Undefined: Redis must be read back first.
   */
  private published: { readonly pairs: Map<string, string>; readonly source: ConfigSource } | undefined;
  private target: ConfigSource | undefined;
  private queue: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private consecutiveFailures = 0;
  private readonly instanceId = randomUUID();
  private readonly lockKey: string;

  constructor(
    private readonly redis: Redis,
    private readonly root: string,
    private readonly deps: { log: FastifyBaseLogger; onFailure?: () => void },
  ) {
    this.lockKey = `swarm-edge-lock:${root}`;
  }

  /** Starts the periodic sync (lock renewal, takeover, retries). */
  start(): void {
    this.timer = setInterval(() => void this.sync(), REDIS_SYNC_MS);
    this.timer.unref();
  }

  /** Stops syncing, waits for a write under way, and gives the lock up for another instance. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.target = undefined;
    await this.queue;
    await this.release().catch(() => undefined);
  }

  /** The config to publish from now on (lazily built: a standby instance never flattens it). */
  offer(source: ConfigSource): Promise<void> {
    this.target = source;
    return this.sync();
  }

  /** Redis came back: what it holds is unknown (a restart without persistence empties it). */
  forget(): Promise<void> {
    this.published = undefined;
    return this.sync();
  }

  /** Brings Redis to the offered config, one attempt at a time; failures are retried by the timer. */
  sync(): Promise<void> {
    this.queue = this.queue.then(async () => {
      const source = this.target;
      if (source === undefined) return;
      try {
        await this.publish(source);
        this.consecutiveFailures = 0;
      } catch (error) {
        this.consecutiveFailures += 1;
        this.deps.onFailure?.();
        // Once at warn, then quietly while Redis stays away (retried every REDIS_SYNC_MS).
        const level = this.consecutiveFailures === 1 ? 'warn' : 'debug';
        this.deps.log[level]({ err: error, attempt: this.consecutiveFailures }, 'could not publish routes to redis; the file and HTTP providers are current; retrying');
      }
    });
    return this.queue;
  }

  /** Takes or renews the publisher lock. */
  async holdLock(): Promise<'renewed' | 'taken' | false> {
    const renewed = await this.redis.eval(
      "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end",
      1, this.lockKey, this.instanceId, String(LOCK_TTL_MS),
    );
    if (renewed === 1) return 'renewed';
    const taken = await this.redis.set(this.lockKey, this.instanceId, 'PX', LOCK_TTL_MS, 'NX');
    if (taken === 'OK') {
      // A new holder cannot trust what it thinks is in Redis: read it back before diffing.
      this.published = undefined;
      return 'taken';
    }
    return false;
  }

  async release(): Promise<void> {
    await this.redis.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end", 1, this.lockKey, this.instanceId);
  }

  /** Writes the difference; returns how many keys were set and deleted, or undefined if another instance holds the lock. */
  async publish(source: ConfigSource): Promise<{ set: number; deleted: number } | undefined> {
    const lock = await this.holdLock();
    if (lock === false) return undefined;
    if (lock === 'renewed' && source === this.published?.source) return { set: 0, deleted: 0 };
    const next = toKeyValues(source(), this.root);
    const current = this.published?.pairs ?? (await this.readAll());
    const multi = this.redis.multi();
    let set = 0;
    let deleted = 0;
    for (const [key, value] of next) {
      if (current.get(key) !== value) {
        multi.set(key, value);
        set += 1;
      }
    }
    for (const key of current.keys()) {
      if (!next.has(key)) {
        multi.del(key);
        deleted += 1;
      }
    }
    if (set + deleted > 0) {
      try {
        const results = await multi.exec();
        const failed = results?.find(([error]) => error);
        if (!results || failed) throw failed?.[0] ?? new Error('redis transaction aborted');
      } catch (error) {
        this.published = undefined;
        throw error;
      }
      this.deps.log.debug({ set, deleted }, 'published routes to redis');
    }
    this.published = { pairs: next, source };
    return { set, deleted };
  }

  private async readAll(): Promise<Map<string, string>> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.redis.scan(cursor, 'MATCH', `${this.root}/*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    const values = new Map<string, string>();
    for (let i = 0; i < keys.length; i += 1000) {
      const slice = keys.slice(i, i + 1000);
      const got = await this.redis.mget(...slice);
      slice.forEach((key, index) => {
        const value = got[index];
        if (value !== null && value !== undefined) values.set(key, value);
      });
    }
    return values;
  }
}
