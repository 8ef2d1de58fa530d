/**
 * Dashboards on the websocket feed: readers that keep every sample they get (live frames and the
 * snapshot sent on each (re)subscribe) and reconnect when their instance goes away, and stalled
 * clients that stop reading their socket while asking for snapshot after snapshot, which the
 * service must close as slow (4008) without the readers noticing.
 */
import { SignJWT } from 'jose';
import { WebSocket } from 'ws';
import type { ServiceInstance } from './instance.js';

export async function feedToken(secret: string, deployments: readonly string[], expiresIn = '2h'): Promise<string> {
  return new SignJWT({ deployments: [...deployments] }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(expiresIn).sign(new TextEncoder().encode(secret));
}

interface FeedSample {
  containerId: string;
  ts: number;
}

export class FeedReader {
  /** containerId → timestamps received (live and snapshot), deduplicated at the end. */
  readonly seen = new Map<string, number[]>();
  connects = 0;
  closes: Record<string, number> = {};
  private socket: WebSocket | undefined;
  private stopped = false;

  constructor(
    private readonly instance: ServiceInstance,
    private readonly token: string,
    private readonly deployments: readonly string[],
  ) {}

  start(): void {
    if (this.stopped) return;
    const socket = new WebSocket(`ws://127.0.0.1:${this.instance.port}/ws/metrics?token=${this.token}`);
    this.socket = socket;
    socket.on('open', () => {
      this.connects += 1;
      for (const deploymentId of this.deployments) socket.send(JSON.stringify({ type: 'subscribe', deploymentId }));
    });
    socket.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString()) as { type: string; samples?: FeedSample[] };
      if (frame.type !== 'samples' && frame.type !== 'snapshot') return;
      for (const sample of frame.samples ?? []) {
        let list = this.seen.get(sample.containerId);
        if (list === undefined) this.seen.set(sample.containerId, (list = []));
        list.push(sample.ts);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', (code) => {
      this.closes[code] = (this.closes[code] ?? 0) + 1;
      if (!this.stopped) setTimeout(() => this.start(), 1000);
    });
  }

  stop(): void {
    this.stopped = true;
    this.socket?.close();
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

export class StalledClient {
  connects = 0;
  closes = 0;
  private socket: WebSocket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly instance: ServiceInstance,
    private readonly token: string,
    private readonly deployments: readonly string[],
  ) {}

  start(): void {
    if (this.stopped) return;
    const socket = new WebSocket(`ws://127.0.0.1:${this.instance.port}/ws/metrics?token=${this.token}`);
    this.socket = socket;
    socket.on('open', () => {
      this.connects += 1;
      // Stop reading: the kernel buffers fill, then the server's send buffer grows.
      (socket as unknown as { _socket: { pause(): void } })._socket.pause();
      let i = 0;
      this.timer = setInterval(() => {
        const deploymentId = this.deployments[i++ % this.deployments.length]!;
        socket.send(JSON.stringify({ type: 'unsubscribe', deploymentId }));
        socket.send(JSON.stringify({ type: 'subscribe', deploymentId }));
      }, 100);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(this.timer);
      this.closes += 1;
      if (!this.stopped) setTimeout(() => this.start(), 2000);
    });
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.socket?.terminate();
  }
}
