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
 *
 * Fencing: holding the lock when the diff was computed proves nothing about the moment it is
 * written (a publisher paused past the lock's TTL wakes up holding nothing). The diff is therefore
 * applied by one Lua script that first compares the lock's token with this instance's: a
 * publisher that lost the lock writes nothing. A publisher that takes the lock reads the whole
 * tree back before diffing, and the holder re-reads it every VERIFY_MS to repair drift (keys
 * written or deleted by anyone else).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../lib/logger.js';
import type { Redis } from 'ioredis';
import type { DynamicConfig } from './traefik-config.js';
import { errorMessage } from '../lib/errors.js';

/**
 * Flattens a config into Traefik KV pairs: object keys lowercased as Traefik's KV reader expects
 * them, arrays indexed. A middleware with no option (`compress: {}`, or `headers` whose only
 * option is an empty map) has no leaf to write; it is written as `<type> = true`, which Traefik's
 * decoder (as for labels) reads as "this middleware, with its defaults". Without that key the
 * router would name a middleware that does not exist in the tree.
 */
export function toKeyValues(config: DynamicConfig, root: string): Map<string, string> {
  const pairs = new Map<string, string>();
  const walk = (value: unknown, prefix: string, depth: number): number => {
    let written = 0;
    if (Array.isArray(value)) {
      value.forEach((item, index) => (written += walk(item, `${prefix}/${index}`, depth + 1)));
    } else if (value !== null && typeof value === 'object') {
      // Names (of routers, services, middlewares, headers) keep their case; option keys are case-insensitive.
      const names = isNameMap(prefix);
      for (const [key, child] of Object.entries(value))
        written += walk(child, `${prefix}/${names ? key : key.toLowerCase()}`, depth + 1);
      if (written === 0 && isMiddlewareType(prefix, depth)) {
        pairs.set(prefix, 'true');
        written = 1;
      }
    } else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      pairs.set(prefix, String(value));
      written = 1;
    }
    return written;
  };
  walk(config, root, 0);
  return pairs;
}

/** `<root>/http/middlewares/<name>/<type>`: four levels below the root. */
function isMiddlewareType(prefix: string, depth: number): boolean {
  return depth === 4 && /\/http\/middlewares\/[^/]+\/[^/]+$/.test(prefix);
}

/** Maps whose keys are user-chosen names rather than option names. */
function isNameMap(prefix: string): boolean {
  return /\/(routers|services|middlewares|customrequestheaders|customresponseheaders)$/.test(prefix);
}

const LOCK_TTL_MS = 15_000;
/** Lock renewal and retry period: a third of the TTL, so a live holder never loses the lock. */
export const REDIS_SYNC_MS = 5_000;
/** How often the holder reads the whole tree back and repairs what differs from what it wrote. */
export const VERIFY_MS = 60_000;

/**
 * Applies a diff only while the caller holds the lock. KEYS[1] is the lock, KEYS[2 .. 1+ARGV[3]]
 * the keys to set (values in ARGV[4 ..]), the remaining keys the ones to delete.
 */
const APPLY_DIFF_IF_HOLDER = `
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('pexpire', KEYS[1], ARGV[2])
local sets = tonumber(ARGV[3])
for i = 1, sets do redis.call('set', KEYS[1 + i], ARGV[3 + i]) end
for i = 2 + sets, #KEYS do redis.call('del', KEYS[i]) end
return 1`;

export interface RedisPublisherStats {
  readonly holder: boolean;
  /** Writes refused because the lock had passed to another instance meanwhile. */
  readonly fencedWrites: number;
  /** Verifications that found the tree different from what this instance last wrote. */
  readonly repairs: number;
  readonly lastVerifiedAt: number | undefined;
  readonly lastError: string | undefined;
  readonly failingSince: number | undefined;
}

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
  private holder = false;
  private fencedWrites = 0;
  private repairs = 0;
  private lastVerifiedAt: number | undefined;
  private lastError: string | undefined;
  private failingSince: number | undefined;
  private readonly instanceId = randomUUID();
  private readonly lockKey: string;

  constructor(
    private readonly redis: Redis,
    private readonly root: string,
    private readonly deps: { log: Logger; onFailure?: () => void; onSynced?: (error: Error | undefined) => void },
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
        this.lastError = undefined;
        this.failingSince = undefined;
        this.deps.onSynced?.(undefined);
      } catch (error) {
        this.consecutiveFailures += 1;
        this.lastError = errorMessage(error);
        this.failingSince ??= Date.now();
        this.deps.onFailure?.();
        this.deps.onSynced?.(error instanceof Error ? error : new Error(String(error)));
        // Once at warn, then quietly while Redis stays away (retried every REDIS_SYNC_MS).
        const level = this.consecutiveFailures === 1 ? 'warn' : 'debug';
        this.deps.log[level](
          { err: error, attempt: this.consecutiveFailures },
          'could not publish routes to redis; the file and HTTP providers are current; retrying',
        );
      }
    });
    return this.queue;
  }

  stats(): RedisPublisherStats {
    return {
      holder: this.holder,
      fencedWrites: this.fencedWrites,
      repairs: this.repairs,
      lastVerifiedAt: this.lastVerifiedAt,
      lastError: this.lastError,
      failingSince: this.failingSince,
    };
  }

  /** Takes or renews the publisher lock. */
  async holdLock(): Promise<'renewed' | 'taken' | false> {
    const renewed = await this.redis.eval(
      "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end",
      1,
      this.lockKey,
      this.instanceId,
      String(LOCK_TTL_MS),
    );
    if (renewed === 1) {
      this.holder = true;
      return 'renewed';
    }
    const taken = await this.redis.set(this.lockKey, this.instanceId, 'PX', LOCK_TTL_MS, 'NX');
    this.holder = taken === 'OK';
    if (taken === 'OK') {
      // A new holder cannot trust what it thinks is in Redis: read it back before diffing.
      this.published = undefined;
      return 'taken';
    }
    return false;
  }

  async release(): Promise<void> {
    await this.redis.eval(
      "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end",
      1,
      this.lockKey,
      this.instanceId,
    );
  }

  /** Writes the difference; returns how many keys were set and deleted, or undefined if another instance holds the lock. */
  async publish(source: ConfigSource, now = Date.now()): Promise<{ set: number; deleted: number } | undefined> {
    const lock = await this.holdLock();
    if (lock === false) return undefined;
    const verify = this.lastVerifiedAt === undefined || now - this.lastVerifiedAt >= VERIFY_MS;
    if (lock === 'renewed' && source === this.published?.source && !verify) return { set: 0, deleted: 0 };
    const next = toKeyValues(source(), this.root);
    const known = verify ? undefined : this.published?.pairs;
    const current = known ?? (await this.readAll());
    const setKeys: string[] = [];
    const values: string[] = [];
    const deleteKeys: string[] = [];
    for (const [key, value] of next) {
      if (current.get(key) !== value) {
        setKeys.push(key);
        values.push(value);
      }
    }
    for (const key of current.keys()) if (!next.has(key)) deleteKeys.push(key);
    const changes = setKeys.length + deleteKeys.length;
    if (changes > 0) {
      let applied: unknown;
      try {
        // One array (ioredis flattens it): a spread of a million keys would overflow the stack.
        const args = [this.lockKey];
        for (const key of setKeys) args.push(key);
        for (const key of deleteKeys) args.push(key);
        args.push(this.instanceId, String(LOCK_TTL_MS), String(setKeys.length));
        for (const value of values) args.push(value);
        applied = await this.redis.eval(APPLY_DIFF_IF_HOLDER, 1 + changes, args);
      } catch (error) {
        this.published = undefined;
        throw error;
      }
      if (applied !== 1) {
        // The lock passed to another instance between our check and the write: nothing was written.
        this.holder = false;
        this.published = undefined;
        this.fencedWrites += 1;
        this.deps.log.warn(
          { lock: this.lockKey },
          'lost the redis publisher lock before writing: the write was refused, another router publishes',
        );
        return undefined;
      }
      if (known === undefined && source === this.published?.source) {
        this.repairs += 1;
        this.deps.log.warn(
          { set: setKeys.length, deleted: deleteKeys.length },
          'the redis provider tree had drifted from what this router wrote: repaired',
        );
      }
      this.deps.log.debug({ set: setKeys.length, deleted: deleteKeys.length }, 'published routes to redis');
    }
    if (known === undefined) this.lastVerifiedAt = now;
    this.published = { pairs: next, source };
    return { set: setKeys.length, deleted: deleteKeys.length };
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
