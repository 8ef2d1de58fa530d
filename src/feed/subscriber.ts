/**
 * One websocket client of the feed, with backpressure that protects everyone else:
 * - while the socket's buffered bytes (ws' userland queue, not yet taken by the kernel) exceed
 *   the limit, nothing more is written to it: new samples wait in a queue that holds only the
 *   latest sample per container (conflation), so it is bounded by the containers of the client's
 *   subscriptions, however slow the client is;
 * - the hub retries backlogged subscribers on a short timer (`flush`), so a queue is sent soon
 *   after the socket drains, not at the next tick;
 * - a client that stays over the limit longer than the grace period is closed with 4008 "slow".
 *
 * - while a subscription's snapshot is being read (from Redis, asynchronously), its live samples
 *   are held back and go into the snapshot instead, so nothing falls between the two;
 * - for a short while after a snapshot, samples of a container no newer than the snapshot's last
 *   one are dropped: the same sample can reach this instance both in the stream read and on the
 *   channel, and a client must never receive a sample twice.
 *
 * Sends take no completion callback: a write the kernel accepts at once leaves bufferedAmount at
 * 0 synchronously, and a callback per send (a closure and a nextTick per socket) was a tenth of
 * the fan-out's cost at 2,000 subscribers.
 */
import type { WebSocket } from 'ws';
import type { Sample } from '../metrics/index.js';
import { CLOSE } from './protocol.js';

export interface SubscriberLimits {
  readonly maxBufferedBytes: number;
  readonly slowGraceMs: number;
  readonly maxSubscriptions: number;
}

export interface FeedCounters {
  framesSent: number;
  samplesSent: number;
  conflated: number;
  slowDisconnects: number;
  duplicatesSuppressed: number;
  /** `requests` frames not sent because the socket was over its limit. */
  figuresDropped: number;
  /** `host` frames (node feed) not sent because the socket was over its limit. */
  hostFramesDropped: number;
}

/** A queued sample is serialised once, however many backlogged subscribers it goes to. */
const serialised = new WeakMap<Sample, string>();
function sampleJson(sample: Sample): string {
  let json = serialised.get(sample);
  if (json === undefined) {
    json = JSON.stringify(sample);
    serialised.set(sample, json);
  }
  return json;
}

export function samplesFrame(parts: readonly string[]): string {
  return `{"type":"samples","samples":[${parts.join(',')}]}`;
}

/** The frame of one deployment's new samples, built once for all its subscribers (same text as samplesFrame). */
export function sharedFrame(samples: readonly Sample[]): Buffer {
  return Buffer.from(JSON.stringify({ type: 'samples', samples }));
}

/** Live samples held per subscription while its snapshot loads; past this, the oldest go. */
export const MAX_HELD_SAMPLES = 20_000;
/** How long after a snapshot duplicates of its samples are filtered out. */
export const SETTLE_MS = 10_000;

export class Subscriber {
  /** Deployments subscribed to. */
  readonly subscriptions = new Set<string>();
  /** Nodes subscribed to (node-feed.ts); counted with deployments against maxSubscriptions. */
  readonly nodeSubscriptions = new Set<string>();
  private readonly pending = new Map<string, Sample>();
  /** deployment → live samples that arrived while its snapshot was loading. */
  private readonly held = new Map<string, Sample[]>();
  /** deployment → (container → newest ts in its snapshot), until `until`. */
  private readonly settling = new Map<string, { until: number; newest: Map<string, number> }>();
  private overSince: number | undefined;
  private closed = false;
  alive = true;
  badMessages = 0;

  constructor(
    readonly socket: WebSocket,
    private readonly limits: SubscriberLimits,
    private readonly counters: FeedCounters,
    private readonly now: () => number = Date.now,
  ) {}

  get isSlow(): boolean {
    return this.overSince !== undefined;
  }

  /**
   * New samples of one deployment. When nothing is queued and the socket is under its limit, they
   * go out at once as `frame`, built once and shared by every subscriber of the deployment;
   * otherwise they queue. Returns whether samples are left queued (the hub then retries).
   */
  offer(deploymentId: string, samples: readonly Sample[], frame: () => Buffer): boolean {
    if (this.closed) return false;
    const held = this.held.get(deploymentId);
    if (held) {
      held.push(...samples);
      if (held.length > MAX_HELD_SAMPLES) held.splice(0, held.length - MAX_HELD_SAMPLES);
      return false;
    }
    if (this.settling.size > 0) {
      const fresh = this.unseen(deploymentId, samples);
      if (fresh !== samples) {
        if (fresh.length === 0) return false;
        return this.offer(deploymentId, fresh, () => sharedFrame(fresh));
      }
    }
    if (this.pending.size > 0 || this.socket.bufferedAmount > this.limits.maxBufferedBytes) {
      for (const sample of samples) this.enqueue(sample);
      return this.flush();
    }
    this.overSince = undefined;
    this.sendData(frame(), samples.length);
    return false;
  }

  /**
   * From now until `release`, live samples of the deployment are held for its snapshot. Returns
   * the hold, which `release` must present: a later subscribe to the same deployment (after an
   * unsubscribe) starts a hold of its own, which an older snapshot must not take.
   */
  hold(deploymentId: string): object {
    const held: Sample[] = [];
    this.held.set(deploymentId, held);
    return held;
  }

  /**
   * Ends `hold` and returns what it held (the caller merges it into the snapshot); undefined when
   * that hold is over (unsubscribed, closed, or replaced by a later subscribe).
   */
  release(deploymentId: string, hold: object): Sample[] | undefined {
    const held = this.held.get(deploymentId);
    if (held === undefined || held !== hold) return undefined;
    this.held.delete(deploymentId);
    return held;
  }

  /**
   * For SETTLE_MS, drops any later sample no newer than the newest of its container in
   * `snapshot` (what the client was just sent).
   */
  settle(deploymentId: string, snapshot: readonly Sample[]): void {
    const newest = new Map<string, number>();
    for (const sample of snapshot) {
      if (sample.ts > (newest.get(sample.containerId) ?? -Infinity)) newest.set(sample.containerId, sample.ts);
    }
    if (newest.size > 0) this.settling.set(deploymentId, { until: this.now() + SETTLE_MS, newest });
  }

  /** Forgets a subscription's hold and settling state (unsubscribed). */
  forget(deploymentId: string): void {
    this.held.delete(deploymentId);
    this.settling.delete(deploymentId);
  }

  /** `samples` itself when all are new, else the new ones. */
  private unseen(deploymentId: string, samples: readonly Sample[]): readonly Sample[] {
    const settle = this.settling.get(deploymentId);
    if (!settle) return samples;
    if (this.now() > settle.until) {
      this.settling.delete(deploymentId);
      return samples;
    }
    const fresh = samples.filter((s) => s.ts > (settle.newest.get(s.containerId) ?? -Infinity));
    this.counters.duplicatesSuppressed += samples.length - fresh.length;
    return fresh.length === samples.length ? samples : fresh;
  }

  /** Queues a sample, replacing an unsent older one of the same container. */
  enqueue(sample: Sample): void {
    if (this.closed) return;
    if (this.pending.has(sample.containerId)) this.counters.conflated += 1;
    this.pending.set(sample.containerId, sample);
  }

  /**
   * Sends what is queued as one frame, unless the socket is over its limit (then checks the grace
   * period). Returns whether samples are left queued.
   */
  flush(): boolean {
    if (this.closed || this.pending.size === 0) return false;
    if (this.socket.bufferedAmount > this.limits.maxBufferedBytes) {
      this.checkSlow();
      return !this.closed;
    }
    this.overSince = undefined;
    const parts: string[] = [];
    for (const sample of this.pending.values()) parts.push(sampleJson(sample));
    this.pending.clear();
    this.sendData(samplesFrame(parts), parts.length);
    return false;
  }

  private sendData(frame: string | Buffer, samples: number): void {
    this.counters.framesSent += 1;
    this.counters.samplesSent += samples;
    this.socket.send(frame, { binary: false });
  }

  /**
   * A frame that the next interval supersedes (`frame`, shared by its subscribers): a deployment's
   * request figures, a node's host sample. Sent when the socket is under its limit, dropped
   * otherwise: the next interval's comes soon, and the history API has every minute.
   */
  offerLatest(frame: string, kind: 'figures' | 'host'): void {
    if (this.closed || this.socket.readyState !== this.socket.OPEN) return;
    if (this.socket.bufferedAmount > this.limits.maxBufferedBytes) {
      if (kind === 'figures') this.counters.figuresDropped += 1;
      else this.counters.hostFramesDropped += 1;
      this.checkSlow();
      return;
    }
    this.counters.framesSent += 1;
    this.socket.send(frame, { binary: false });
  }

  /** Control frames (acknowledgements, errors, snapshots) go out at once. */
  send(message: object): void {
    if (this.closed || this.socket.readyState !== this.socket.OPEN) return;
    this.counters.framesSent += 1;
    this.socket.send(JSON.stringify(message));
  }

  /** Called on the heartbeat too: a client can be stuck over the limit with nothing new to send. */
  checkSlow(): void {
    if (this.closed) return;
    if (this.socket.bufferedAmount <= this.limits.maxBufferedBytes) {
      this.overSince = undefined;
      return;
    }
    this.overSince ??= this.now();
    if (this.now() - this.overSince >= this.limits.slowGraceMs) {
      this.counters.slowDisconnects += 1;
      this.close(CLOSE.slow, 'slow');
      // A client that does not read will not read a close frame either: do not wait for it.
      setTimeout(() => this.socket.terminate(), 1_000).unref();
    }
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.pending.clear();
    this.held.clear();
    this.settling.clear();
    this.socket.close(code, reason);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get queued(): number {
    return this.pending.size;
  }
}
