/**
 * Every sample each instance collects, as it publishes them on Redis for the other instances
 * (`swarm-edge:metrics:<deployment>`, `{from, samples}`): the independent record the stored 60 s
 * windows are checked against. While Redis is down nothing is recorded; windows of those minutes
 * are counted as unverifiable, never as correct.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Sample } from '../src/metrics/index.js';
import { FORGED_FROM } from './bad-input.js';

/** The fields of a sample the checks use: counters and their deltas. */
export type RecordedSample = Pick<
  Sample,
  | 'containerId'
  | 'ts'
  | 'netRxBytes'
  | 'netTxBytes'
  | 'blockReadBytes'
  | 'blockWriteBytes'
  | 'netRxDelta'
  | 'netTxDelta'
  | 'blockReadDelta'
  | 'blockWriteDelta'
>;

export class SampleRecorder {
  /** instance id (the `from` of a message) → containerId → samples in arrival order. */
  readonly byInstance = new Map<string, Map<string, RecordedSample[]>>();
  messages = 0;
  private readonly client: Redis;

  constructor(redis: RedisOptions) {
    this.client = new Redis({ ...redis, lazyConnect: true, maxRetriesPerRequest: null, retryStrategy: () => 500 });
    this.client.on('error', () => undefined);
    // ioredis re-issues the pattern subscription on every reconnect.
    this.client.on('pmessage', (_pattern: string, _channel: string, message: string) => this.record(message));
  }

  async start(): Promise<void> {
    await this.client.connect();
    await this.client.psubscribe('swarm-edge:metrics:*');
  }

  stop(): void {
    this.client.disconnect();
  }

  private record(message: string): void {
    // The bad-input round forges messages on these channels: only the instances' own are records.
    let body: { from: string; samples: RecordedSample[] };
    try {
      body = JSON.parse(message) as typeof body;
    } catch {
      return;
    }
    if (
      body === null ||
      typeof body !== 'object' ||
      typeof body.from !== 'string' ||
      body.from === FORGED_FROM ||
      !Array.isArray(body.samples)
    )
      return;
    this.messages += 1;
    let containers = this.byInstance.get(body.from);
    if (containers === undefined) this.byInstance.set(body.from, (containers = new Map<string, RecordedSample[]>()));
    for (const s of body.samples) {
      let list = containers.get(s.containerId);
      if (list === undefined) containers.set(s.containerId, (list = []));
      list.push({
        containerId: s.containerId,
        ts: s.ts,
        netRxBytes: s.netRxBytes,
        netTxBytes: s.netTxBytes,
        blockReadBytes: s.blockReadBytes,
        blockWriteBytes: s.blockWriteBytes,
        netRxDelta: s.netRxDelta,
        netTxDelta: s.netTxDelta,
        blockReadDelta: s.blockReadDelta,
        blockWriteDelta: s.blockWriteDelta,
      });
    }
  }
}
