/**
 * The node part of the feed: `{"type":"subscribe","nodeId":"…"}` gives the node's live window of
 * host samples as a snapshot, then each new sample as a `host` frame, on any instance.
 *
 * Cross-node, as for deployments: each node's metrics role PUBLISHes its host sample on
 * `swarm-edge:node:<id>` and appends it, in the same MULTI, to a capped list
 * `swarm-edge:node-window:<id>` (one sample per interval: a list of the window's length is the
 * whole window). An instance SUBSCRIBEs to a node's channel while a local client watches it. A
 * snapshot subscribes first, holds live samples, reads the list, and sends list ∪ local window ∪
 * held, each timestamp once; live frames then carry only samples newer than the snapshot's newest,
 * so a client never gets a sample twice, and a resume (`since`) gets exactly what it missed while
 * the window holds it (`recovered: true`).
 *
 * Messages on the channels and entries of the lists are untrusted input: validated field by field
 * (a host sample of exactly this service's shape, of the channel's own node, stamped near the
 * local clock), counted and dropped otherwise.
 */
import type { FeedBus } from '../redis/index.js';
import { z } from 'zod';
import { IDENTIFIER_PATTERN, isIdentifier } from '../lib/identifiers.js';
import type { Logger } from '../lib/logger.js';
import { withTimeout } from '../lib/with-timeout.js';
import { FUTURE_TOLERANCE_MS } from '../metrics/index.js';
import type { HostSample } from '../nodes/index.js';
import type { Subscriber } from './subscriber.js';
import { ChannelSubscriptions } from './channel-subscriptions.js';

export const NODE_CHANNEL_PREFIX = 'swarm-edge:node:';
export const NODE_WINDOW_PREFIX = 'swarm-edge:node-window:';
/** A host sample is well under 2 KiB; a message past this is not one of ours. */
const MAX_MESSAGE_BYTES = 64 * 1024;
/** Bounds a window list (and a read of it) whatever the interval: 1,000 samples is 83 min at 5 s. */
const MAX_WINDOW_ENTRIES = 1_000;
const READ_TIMEOUT_MS = 3_000;

const count = z.number().min(0).max(Number.MAX_SAFE_INTEGER);
const gauge = count.nullable();
export const hostSampleSchema = z.strictObject({
  ts: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  cpuPercent: z.number().min(0).max(100).nullable(),
  cpus: z.number().int().min(1).max(100_000).nullable(),
  load1: gauge,
  load5: gauge,
  load15: gauge,
  memoryTotalBytes: gauge,
  memoryAvailableBytes: gauge,
  memoryUsedBytes: gauge,
  swapTotalBytes: gauge,
  swapUsedBytes: gauge,
  diskReadBytes: gauge,
  diskWrittenBytes: gauge,
  diskReadRate: gauge,
  diskWriteRate: gauge,
  netRxBytes: gauge,
  netTxBytes: gauge,
  netRxRate: gauge,
  netTxRate: gauge,
  disks: z
    .array(
      z.strictObject({
        path: z.string().min(1).max(4096),
        totalBytes: count,
        usedBytes: count,
        availableBytes: count,
      }),
    )
    .max(64),
});
const messageSchema = z.strictObject({
  from: z.string().min(1).max(64),
  nodeId: z.string().regex(IDENTIFIER_PATTERN),
  host: hostSampleSchema,
});

export type NodeVerdict =
  | { readonly ok: true; readonly from: string; readonly host: HostSample }
  | { readonly ok: false; readonly reason: string; readonly detail: string };

/** Validates one message of `nodeId`'s channel or window list. */
export function parseNodeMessage(nodeId: string, message: Buffer, now: number, oldestMs: number): NodeVerdict {
  if (message.length > MAX_MESSAGE_BYTES) return { ok: false, reason: 'too_large', detail: `${message.length} bytes` };
  let value: unknown;
  try {
    value = JSON.parse(message.toString('utf8'));
  } catch {
    return { ok: false, reason: 'bad_json', detail: 'not JSON' };
  }
  const parsed = messageSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, reason: 'bad_shape', detail: `${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}` };
  }
  const { from, host } = parsed.data;
  if (parsed.data.nodeId !== nodeId)
    return { ok: false, reason: 'wrong_node', detail: `a sample of ${parsed.data.nodeId} on ${nodeId}'s channel` };
  if (host.ts > now + FUTURE_TOLERANCE_MS)
    return { ok: false, reason: 'clock_skew', detail: `stamped ${host.ts - now} ms ahead of this instance's clock` };
  if (host.ts <= oldestMs) return { ok: false, reason: 'too_old', detail: 'older than the live window' };
  return { ok: true, from, host };
}

export interface NodeFeedStats {
  readonly nodeSubscriptions: number;
  readonly hostPublished: number;
  readonly remoteHost: number;
  readonly nodeSnapshotsFromRedis: number;
  readonly nodeSnapshotsLocal: number;
}

/** A subscription: samples held while its snapshot loads, then the newest timestamp sent. */
interface Watch {
  held: HostSample[] | undefined;
  newest: number;
}

export class NodeFeed {
  /** node → its watching subscribers. */
  private readonly byNode = new Map<string, Map<Subscriber, Watch>>();
  /** node → its recent samples seen here (published here, or received while watched), oldest first. */
  private readonly windows = new Map<string, HostSample[]>();
  private readonly channels: ChannelSubscriptions;
  private readonly s = { hostPublished: 0, remoteHost: 0, nodeSnapshotsFromRedis: 0, nodeSnapshotsLocal: 0 };

  constructor(
    private readonly options: { readonly windowMs: number; readonly instanceId: string },
    private readonly deps: {
      redis: FeedBus | undefined;
      log: Logger;
      /** Counts a refused remote message by reason (the hub's remoteRejectedBy). */
      reject: (reason: string) => void;
    },
  ) {
    this.channels = new ChannelSubscriptions(NODE_CHANNEL_PREFIX, { bus: deps.redis, log: deps.log });
  }

  stats(): NodeFeedStats {
    let subscriptions = 0;
    for (const watchers of this.byNode.values()) subscriptions += watchers.size;
    return { nodeSubscriptions: subscriptions, ...this.s };
  }

  /** This node's new host sample: to local watchers, and to every instance through Redis. */
  publish(nodeId: string, host: HostSample): void {
    this.deliver(nodeId, host);
    const bus = this.deps.redis;
    if (!bus?.ready) return;
    const message = JSON.stringify({ from: this.options.instanceId, nodeId, host });
    const key = `${NODE_WINDOW_PREFIX}${nodeId}`;
    this.s.hostPublished += 1;
    void bus
      .publishAll([
        {
          channel: `${NODE_CHANNEL_PREFIX}${nodeId}`,
          message,
          writes: [
            ['rpush', key, message],
            ['ltrim', key, -MAX_WINDOW_ENTRIES, -1],
            ['pexpire', key, this.options.windowMs],
          ],
        },
      ])
      .then((failures) => {
        if (failures > 0) this.deps.log.debug({ nodeId }, 'node sample publish failed');
      });
  }

  /** Whether a channel is a node's; its message is then handled (or refused) here. */
  onRemote(channel: string, message: Buffer): boolean {
    if (!channel.startsWith(NODE_CHANNEL_PREFIX)) return false;
    const nodeId = channel.slice(NODE_CHANNEL_PREFIX.length);
    if (!isIdentifier(nodeId)) {
      this.deps.reject('bad_channel');
      return true;
    }
    const now = Date.now();
    const verdict = parseNodeMessage(nodeId, message, now, now - this.options.windowMs);
    if (!verdict.ok) {
      this.deps.reject(verdict.reason);
      this.deps.log.debug({ nodeId, reason: verdict.reason, detail: verdict.detail }, 'redis node message refused');
      return true;
    }
    if (verdict.from === this.options.instanceId) return true;
    this.s.remoteHost += 1;
    this.deliver(nodeId, verdict.host);
    return true;
  }

  /** (Re)subscribes every watched node's channel (Redis connected again). */
  resubscribe(): void {
    this.channels.renew(this.byNode.keys());
  }

  subscribe(subscriber: Subscriber, nodeId: string, since: number | undefined): void {
    subscriber.nodeSubscriptions.add(nodeId);
    let watchers = this.byNode.get(nodeId);
    if (!watchers) {
      this.byNode.set(nodeId, (watchers = new Map<Subscriber, Watch>()));
      this.channels.join(nodeId);
    }
    const watch: Watch = { held: [], newest: -Infinity };
    watchers.set(subscriber, watch);
    subscriber.send({ type: 'subscribed', nodeId });
    void this.sendSnapshot(subscriber, nodeId, since, watch);
  }

  unsubscribe(subscriber: Subscriber, nodeId: string): void {
    subscriber.nodeSubscriptions.delete(nodeId);
    const watchers = this.byNode.get(nodeId);
    watchers?.delete(subscriber);
    if (watchers?.size === 0) {
      this.byNode.delete(nodeId);
      this.channels.leave(nodeId);
    }
  }

  /** Drops samples older than the window, and the windows of remote nodes no one watches. */
  prune(now: number, localNodeId: string | undefined): void {
    const oldest = now - this.options.windowMs;
    for (const [nodeId, window] of this.windows) {
      if (nodeId !== localNodeId && !this.byNode.has(nodeId)) {
        this.windows.delete(nodeId);
        continue;
      }
      const keep = window.findIndex((h) => h.ts > oldest);
      if (keep === -1) this.windows.delete(nodeId);
      else if (keep > 0) window.splice(0, keep);
    }
  }

  private deliver(nodeId: string, host: HostSample): void {
    const window = this.windows.get(nodeId) ?? [];
    // Each timestamp once, in order: a sample older than the newest here is a late duplicate.
    if (window.length > 0 && window[window.length - 1]!.ts >= host.ts) return;
    window.push(host);
    if (window.length > MAX_WINDOW_ENTRIES) window.shift();
    this.windows.set(nodeId, window);
    const watchers = this.byNode.get(nodeId);
    if (!watchers) return;
    let frame: string | undefined;
    for (const [subscriber, watch] of watchers) {
      if (watch.held) {
        watch.held.push(host);
        continue;
      }
      if (host.ts <= watch.newest) continue;
      watch.newest = host.ts;
      subscriber.offerLatest((frame ??= JSON.stringify({ type: 'host', nodeId, sample: host })), 'host');
    }
  }

  private async sendSnapshot(
    subscriber: Subscriber,
    nodeId: string,
    since: number | undefined,
    watch: Watch,
  ): Promise<void> {
    const now = Date.now();
    const windowStart = now - this.options.windowMs;
    const resumable = since !== undefined && since >= windowStart;
    const after = resumable ? since : windowStart;
    let stored: HostSample[] | undefined;
    const redis = this.deps.redis;
    if (redis?.ready) {
      try {
        // The channel first: whatever the list read misses then arrives on it.
        if (await this.channels.confirmed(nodeId))
          stored = await withTimeout(this.readWindow(nodeId, now), READ_TIMEOUT_MS, 'node window read');
      } catch (error) {
        this.deps.log.debug({ err: error, nodeId }, 'node window read failed; snapshot from this instance');
      }
    }
    // Unsubscribed, or subscribed again meanwhile (that subscribe sends its own snapshot).
    if (this.byNode.get(nodeId)?.get(subscriber) !== watch) return;
    const seen = new Set<number>();
    const host = [...(stored ?? []), ...(this.windows.get(nodeId) ?? []), ...(watch.held ?? [])]
      .filter((h) => h.ts > after && !seen.has(h.ts) && seen.add(h.ts))
      .sort((a, b) => a.ts - b.ts);
    watch.held = undefined;
    watch.newest = host.length > 0 ? host[host.length - 1]!.ts : after;
    if (stored !== undefined) this.s.nodeSnapshotsFromRedis += 1;
    else this.s.nodeSnapshotsLocal += 1;
    const frame: Record<string, unknown> = { type: 'snapshot', nodeId, host };
    // Complete when the list answered, or without Redis (this instance is all there is).
    if (since !== undefined) frame.recovered = resumable && (stored !== undefined || !redis);
    subscriber.send(frame);
  }

  private async readWindow(nodeId: string, now: number): Promise<HostSample[]> {
    const entries = await this.deps.redis!.pub.lrangeBuffer(`${NODE_WINDOW_PREFIX}${nodeId}`, -MAX_WINDOW_ENTRIES, -1);
    const samples: HostSample[] = [];
    for (const entry of entries) {
      const verdict = parseNodeMessage(nodeId, entry, now, now - this.options.windowMs);
      if (verdict.ok) samples.push(verdict.host);
      else if (verdict.reason !== 'too_old') this.deps.reject(verdict.reason);
    }
    return samples;
  }
}
