/**
 * Publishes the config into Redis for Traefik's Redis (KV) provider, under its key layout
 * (traefik/http/routers/<r>/rule, .../entrypoints/0, ...). Every key write makes Traefik rebuild
 * its whole config, so only the difference is written, in one MULTI/EXEC, and removed keys are
 * deleted explicitly. Only the instance holding the lock publishes, so two routers never
 * interleave their diffs.
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

export class RedisPublisher {
  private published: Map<string, string> | undefined;
  private readonly instanceId = randomUUID();
  private readonly lockKey: string;

  constructor(
    private readonly redis: Redis,
    private readonly root: string,
    private readonly log: FastifyBaseLogger,
  ) {
    this.lockKey = `swarm-edge-lock:${root}`;
  }

  /** Takes or renews the publisher lock; true while this instance holds it. */
  async holdLock(): Promise<boolean> {
    const renewed = await this.redis.eval(
      "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end",
      1, this.lockKey, this.instanceId, String(LOCK_TTL_MS),
    );
    if (renewed === 1) return true;
    const taken = await this.redis.set(this.lockKey, this.instanceId, 'PX', LOCK_TTL_MS, 'NX');
    if (taken === 'OK') {
      // A new holder cannot trust what it thinks is in Redis: read it back before diffing.
      this.published = undefined;
      return true;
    }
    return false;
  }

  async release(): Promise<void> {
    await this.redis.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end", 1, this.lockKey, this.instanceId);
  }

  /** Writes the difference; returns how many keys were set and deleted. */
  async publish(config: DynamicConfig): Promise<{ set: number; deleted: number } | undefined> {
    if (!(await this.holdLock())) return undefined;
    const next = toKeyValues(config, this.root);
    const current = this.published ?? (await this.readAll());
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
    if (set + deleted === 0) {
      this.published = next;
      return { set, deleted };
    }
    try {
      const results = await multi.exec();
      const failed = results?.find(([error]) => error);
      if (!results || failed) throw failed?.[0] ?? new Error('redis transaction aborted');
    } catch (error) {
      this.published = undefined;
      throw error;
    }
    this.published = next;
    this.log.debug({ set, deleted }, 'published routes to redis');
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
