import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { FeedBus, type RedisClient } from './feed-bus.js';

/** A cluster client that answers each command after `delayMs`, recording when each was sent and done. */
function fakeCluster(delayMs: (name: string) => number) {
  const log: string[] = [];
  const answer = (name: string, args: unknown[]) => {
    log.push(`sent ${name} ${String(args[0])}`);
    return new Promise((resolve) =>
      setTimeout(() => {
        log.push(`done ${name} ${String(args[0])}`);
        resolve(1);
      }, delayMs(name)),
    );
  };
  const client = Object.assign(new EventEmitter(), {
    isCluster: true,
    status: 'ready',
    call: (name: string, ...args: unknown[]) => answer(name, args),
    spublish: (channel: string, message: string) => answer('spublish', [channel, message]),
    ssubscribe: (channel: string) => answer('ssubscribe', [channel]),
  });
  return { client: client as unknown as RedisClient, log };
}

describe('FeedBus on a cluster', () => {
  it('publishes a message only once its stored copy is acknowledged, and counts failures', async () => {
    // The stream write is slow and the publish fast: the publish must still come after it.
    const { client, log } = fakeCluster((name) => (name === 'xadd' ? 20 : 1));
    const bus = new FeedBus(client, client);
    expect(bus.sharded).toBe(true);
    const failures = await bus.publishAll([
      {
        channel: 'c1',
        message: 'm1',
        writes: [
          ['xadd', 'k1', '*', 'm', 'm1'],
          ['pexpire', 'k1', 1000],
        ],
      },
      { channel: 'c2', message: 'm2' },
    ]);
    expect(failures).toBe(0);
    expect(log.indexOf('sent spublish c1')).toBeGreaterThan(log.indexOf('done xadd k1'));
    expect(log.indexOf('sent spublish c1')).toBeGreaterThan(log.indexOf('done pexpire k1'));
    // Publications do not wait on each other.
    expect(log.indexOf('sent spublish c2')).toBeLessThan(log.indexOf('done xadd k1'));

    const failing = Object.assign(client, { spublish: () => Promise.reject(new Error('CLUSTERDOWN')) });
    expect(await new FeedBus(failing, failing).publishAll([{ channel: 'c3', message: 'm3' }])).toBe(1);
  });

  it('subscribes with SSUBSCRIBE and listens for sharded messages', async () => {
    const { client, log } = fakeCluster(() => 1);
    const bus = new FeedBus(client, client);
    const seen: string[] = [];
    bus.onMessage((channel, message) => seen.push(`${channel.toString()}:${message.toString()}`));
    await bus.subscribe('swarm-edge:metrics:d1');
    expect(log).toContain('sent ssubscribe swarm-edge:metrics:d1');
    (client as unknown as EventEmitter).emit('smessageBuffer', Buffer.from('swarm-edge:metrics:d1'), Buffer.from('x'));
    (client as unknown as EventEmitter).emit(
      'messageBuffer',
      Buffer.from('swarm-edge:metrics:d1'),
      Buffer.from('broadcast'),
    );
    expect(seen).toEqual(['swarm-edge:metrics:d1:x']);
  });
});
