/**
 * The feed's Redis: a connection for commands and one for subscriptions, on one server (or a
 * Sentinel's master) or on a Redis Cluster, where it uses sharded pub/sub.
 *
 * Each message is published together with the writes that keep it for later readers (a window
 * stream entry, a list entry, the latest figures): whatever a reader that subscribed first and
 * then read the stored copy misses must come on the channel. On one server a MULTI does both at
 * once. On a cluster the key and the channel sit on different slots, which no MULTI can span:
 * the writes are made first and the message published once they are acknowledged, which keeps the
 * same guarantee (a message is never out before its stored copy).
 *
 * On a cluster, a plain PUBLISH is broadcast to every node over the cluster bus; SPUBLISH keeps a
 * channel on the shard of its slot, and SSUBSCRIBE listens there (Redis 7).
 */
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from '../lib/logger.js';

export type RedisClient = Redis | Cluster;

/** One Redis command: its name and arguments, as `call` takes them. */
export type RedisCommand = readonly [string, ...Array<string | number>];

export interface Publication {
  readonly channel: string;
  readonly message: string;
  /** Commands that store the message for later readers, made before (or with) the publish. */
  readonly writes?: readonly RedisCommand[];
}

export class FeedBus {
  readonly sharded: boolean;

  constructor(
    readonly pub: RedisClient,
    readonly sub: RedisClient,
  ) {
    this.sharded = pub.isCluster;
  }

  get ready(): boolean {
    return this.pub.status === 'ready';
  }

  subscribe(channel: string): Promise<unknown> {
    return this.sharded ? this.sub.ssubscribe(channel) : this.sub.subscribe(channel);
  }

  unsubscribe(channel: string): Promise<unknown> {
    return this.sharded ? this.sub.sunsubscribe(channel) : this.sub.unsubscribe(channel);
  }

  /** Every message on the channels subscribed, as bytes (a handler must never throw). */
  onMessage(handler: (channel: Buffer, message: Buffer) => void): void {
    this.sub.on(this.sharded ? 'smessageBuffer' : 'messageBuffer', handler);
  }

  onReady(handler: () => void): void {
    this.sub.on('ready', handler);
  }

  /** Publishes each message with its writes; resolves to the number of publications that failed. */
  async publishAll(publications: readonly Publication[]): Promise<number> {
    if (publications.length === 0) return 0;
    if (!this.sharded) {
      const multi = this.pub.multi();
      for (const p of publications) {
        for (const [name, ...args] of p.writes ?? []) multi.call(name, ...args);
        multi.publish(p.channel, p.message);
      }
      try {
        const results = await multi.exec();
        return (results ?? []).filter(([error]) => error).length;
      } catch {
        return publications.length;
      }
    }
    const outcomes = await Promise.allSettled(
      publications.map(async (p) => {
        // Autopipelined per node: one round trip per shard for all writes, then one for the messages.
        await Promise.all((p.writes ?? []).map(([name, ...args]) => this.pub.call(name, ...args)));
        await this.pub.spublish(p.channel, p.message);
      }),
    );
    return outcomes.filter((outcome) => outcome.status === 'rejected').length;
  }

  connect(): void {
    if (this.sub.status === 'wait') this.sub.connect().catch(() => undefined);
  }

  disconnect(): void {
    this.sub.disconnect();
  }
}

/**
 * A connection of its own for subscriptions (a subscribed connection can run no other command),
 * named `connectionName` on a single server; a cluster's copy keeps its node options.
 */
export function subscriberOf(redis: RedisClient, connectionName: string, log: Logger): RedisClient {
  const sub = redis.isCluster ? redis.duplicate() : (redis as Redis).duplicate({ connectionName });
  // The main connection reports Redis health; this one only needs its errors handled.
  sub.on('error', (error: Error) => log.debug({ err: error, connectionName }, 'redis subscriber connection error'));
  return sub;
}
