/**
 * Dashboards on the websocket feed: readers that keep every sample they get (live frames and the
 * snapshot sent on each (re)subscribe) and reconnect when their instance goes away, resuming with
 * `since` (the newest sample they hold) and counting any sample they are sent twice, and stalled
 * clients that stop reading their socket while asking for snapshot after snapshot, which the
 * service must close as slow (4008) without the readers noticing.
 */
import { SignJWT } from 'jose';
import { WebSocket } from 'ws';
import type { ServiceInstance } from './instance.js';

export async function feedToken(secret: string, deployments: readonly string[], expiresIn = '2h'): Promise<string> {
  return new SignJWT({ deployments: [...deployments] })
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime(expiresIn)
    .sign(new TextEncoder().encode(secret));
}

/** Instances that collect the same containers in the soak (a and b, on one node). */
const COLLECTORS = 2;

interface FeedSample {
  containerId: string;
  ts: number;
}

/** A feed connection that comes back (after `reconnectMs`) whenever it is closed, until stopped. */
abstract class FeedClient {
  connects = 0;
  closes = 0;
  protected socket: WebSocket | undefined;
  private stopped = false;

  constructor(
    private readonly instance: ServiceInstance,
    private readonly token: string,
    protected readonly deployments: readonly string[],
    private readonly reconnectMs: number,
  ) {}

  start(): void {
    if (this.stopped) return;
    const socket = new WebSocket(`ws://127.0.0.1:${this.instance.port}/ws/metrics?token=${this.token}`);
    this.socket = socket;
    socket.on('open', () => {
      this.connects += 1;
      this.opened(socket);
    });
    socket.on('message', (data: Buffer) => this.received(data));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closes += 1;
      this.closed();
      if (!this.stopped) setTimeout(() => this.start(), this.reconnectMs);
    });
  }

  stop(): void {
    this.stopped = true;
    this.closed();
    this.socket?.terminate();
  }

  protected abstract opened(socket: WebSocket): void;
  protected received(_data: Buffer): void {}
  protected closed(): void {}
}

export class FeedReader extends FeedClient {
  /** containerId → timestamps received (live and snapshot), deduplicated at the end. */
  readonly seen = new Map<string, number[]>();
  /** containerId@ts → copies received outside full snapshots. */
  private readonly copies = new Map<string, number>();
  private newest = 0;
  /**
   * Samples received more often than there are collectors. Both soak instances collect the same
   * node's containers on ticks aligned to the interval, so two samples of one container can share
   * a timestamp: a key may come twice legitimately, never three times.
   */
  duplicates = 0;
  /** Samples at or before `since` in a snapshot that said `recovered: true`. */
  resumeViolations = 0;
  resumesRecovered = 0;
  resumesFull = 0;

  /** The `since` of the current connection's subscriptions. */
  private since = 0;

  constructor(instance: ServiceInstance, token: string, deployments: readonly string[]) {
    super(instance, token, deployments, 1000);
  }

  protected opened(socket: WebSocket): void {
    this.since = this.newest;
    for (const deploymentId of this.deployments)
      socket.send(JSON.stringify({ type: 'subscribe', deploymentId, ...(this.newest ? { since: this.newest } : {}) }));
  }

  protected override received(data: Buffer): void {
    const frame = JSON.parse(data.toString()) as { type: string; samples?: FeedSample[]; recovered?: boolean };
    if (frame.type !== 'samples' && frame.type !== 'snapshot') return;
    if (frame.recovered === true) this.resumesRecovered += 1;
    if (frame.recovered === false) this.resumesFull += 1;
    // A full snapshot (no resume, or `recovered: false`) repeats what the reader has, by design.
    const full = frame.type === 'snapshot' && frame.recovered !== true;
    for (const sample of frame.samples ?? []) {
      if (frame.recovered === true && sample.ts <= this.since) this.resumeViolations += 1;
      if (!full) {
        const key = `${sample.containerId}@${sample.ts}`;
        const n = (this.copies.get(key) ?? 0) + 1;
        this.copies.set(key, n);
        if (n > COLLECTORS) this.duplicates += 1;
      }
      if (sample.ts > this.newest) this.newest = sample.ts;
      let list = this.seen.get(sample.containerId);
      if (list === undefined) this.seen.set(sample.containerId, (list = []));
      list.push(sample.ts);
    }
  }

  /** Distinct samples received (a snapshot after a reconnect repeats some). */
  distinctSamples(): number {
    let n = 0;
    for (const list of this.seen.values()) n += new Set(list).size;
    return n;
  }

  /** Gaps between consecutive samples of each container, as [from, to] ms. */
  gaps(): Array<[number, number]> {
    const gaps: Array<[number, number]> = [];
    for (const list of this.seen.values()) {
      const sorted = [...new Set(list)].sort((a, b) => a - b);
      for (let i = 1; i < sorted.length; i++) gaps.push([sorted[i - 1]!, sorted[i]!]);
    }
    return gaps;
  }
}

export class StalledClient extends FeedClient {
  private timer: NodeJS.Timeout | undefined;

  constructor(instance: ServiceInstance, token: string, deployments: readonly string[]) {
    super(instance, token, deployments, 2000);
  }

  protected opened(socket: WebSocket): void {
    // Stop reading: the kernel buffers fill, then the server's send buffer grows.
    (socket as unknown as { _socket: { pause(): void } })._socket.pause();
    let i = 0;
    this.timer = setInterval(() => {
      const deploymentId = this.deployments[i++ % this.deployments.length]!;
      socket.send(JSON.stringify({ type: 'unsubscribe', deploymentId }));
      socket.send(JSON.stringify({ type: 'subscribe', deploymentId }));
    }, 100);
  }

  protected override closed(): void {
    clearInterval(this.timer);
  }
}
