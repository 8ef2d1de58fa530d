import { EventEmitter } from 'node:events';
import { SignJWT } from 'jose';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { WebSocket } from 'ws';
import { LiveCache, type Sample } from '../metrics/index.js';
import { FeedBus } from '../redis/index.js';
import { allows, allowsNode, createFeedAuthenticator, type Grant } from './feed-auth.js';
import { mergeSamples, MetricsFeed } from './metrics-feed.js';
import { CLOSE, parseClientMessage } from './protocol.js';
import { samplesFrame, sharedFrame, Subscriber, type FeedCounters } from './subscriber.js';

const secret = 'a-test-secret-that-is-long-enough-for-hs256';
const sign = (claims: Record<string, unknown>, key = secret) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(new TextEncoder().encode(key));
const jwt = createFeedAuthenticator({
  mode: 'jwt',
  secret,
  jwksUrl: undefined,
  issuer: undefined,
  audience: undefined,
});

describe('feed authentication', () => {
  it('grants the deployments the token names, and nothing else', async () => {
    const grant = await jwt(await sign({ deployments: ['dep-a', 'dep-b'] }));
    expect(allows(grant, 'dep-a')).toBe(true);
    expect(allows(grant, 'dep-c')).toBe(false);
    expect(allows(await jwt(await sign({ deployments: ['*'] })), 'anything')).toBe(true);
  });

  it('refuses a missing, forged, claimless or alg-none token', async () => {
    await expect(jwt(undefined)).rejects.toThrow(/token is required/);
    await expect(
      jwt(await sign({ deployments: ['dep-a'] }, 'another-secret-that-is-long-enough-xxxx')),
    ).rejects.toThrow(/invalid token/);
    await expect(jwt(await sign({ sub: 'x' }))).rejects.toThrow(/deployments/);
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"deployments":["*"]}').toString('base64url')}.`;
    await expect(jwt(none)).rejects.toThrow(/invalid token/);
  });

  it('grants nodes only through a nodes claim, and refuses a malformed claim rather than granting less', async () => {
    const deploymentOnly = await jwt(await sign({ deployments: ['dep-a'] }));
    expect(allowsNode(deploymentOnly, 'node-1')).toBe(false);
    const nodesOnly = await jwt(await sign({ nodes: ['node-1'] }));
    expect(allowsNode(nodesOnly, 'node-1')).toBe(true);
    expect(allowsNode(nodesOnly, 'node-2')).toBe(false);
    expect(allows(nodesOnly, 'dep-a')).toBe(false);
    const operator = await jwt(await sign({ deployments: ['*'], nodes: ['*'] }));
    expect(allowsNode(operator, 'any-node')).toBe(true);
    for (const nodes of [[], 'node-1', { 0: 'node-1' }, ['a b'], ['NODE\u200b'], Array(10_001).fill('n')])
      await expect(jwt(await sign({ deployments: ['dep-a'], nodes }))).rejects.toThrow(/nodes/);
    // Lookalikes are other ids: a fullwidth or trailing-dot node id is not node-1.
    expect(allowsNode(nodesOnly, 'ｎode-1')).toBe(false);
    expect(allowsNode(nodesOnly, 'node-1.')).toBe(false);
  });

  it('refuses a token without exp unless told to accept them', async () => {
    const noExpiry = await new SignJWT({ deployments: ['dep-a'] })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(secret));
    await expect(jwt(noExpiry)).rejects.toThrow(/exp/);
    const lenient = createFeedAuthenticator({
      mode: 'jwt',
      secret,
      jwksUrl: undefined,
      issuer: undefined,
      audience: undefined,
      requireExpiry: false,
    });
    expect(allows(await lenient(noExpiry), 'dep-a')).toBe(true);
  });

  it('refuses everyone when no key is configured, and grants everything only when disabled explicitly', async () => {
    const unconfigured = createFeedAuthenticator({
      mode: 'jwt',
      secret: undefined,
      jwksUrl: undefined,
      issuer: undefined,
      audience: undefined,
    });
    expect(unconfigured.configured).toBe(false);
    await expect(unconfigured(await sign({ deployments: ['*'] }))).rejects.toThrow(/not configured/);
    const none = createFeedAuthenticator({
      mode: 'none',
      secret: undefined,
      jwksUrl: undefined,
      issuer: undefined,
      audience: undefined,
    });
    expect(allows(await none(undefined), 'dep-x')).toBe(true);
  });
});

describe('feed protocol', () => {
  it('accepts subscribe and unsubscribe, and names what is wrong otherwise', () => {
    expect(parseClientMessage('{"type":"subscribe","deploymentId":"dep-1"}')).toEqual({
      ok: true,
      message: { type: 'subscribe', deploymentId: 'dep-1' },
    });
    expect(parseClientMessage('{nope')).toMatchObject({ ok: false, code: 'bad_json' });
    expect(parseClientMessage('{"type":"drop_tables"}')).toMatchObject({ ok: false, code: 'bad_message' });
    expect(parseClientMessage('{"type":"subscribe","deploymentId":"a b`"}')).toMatchObject({
      ok: false,
      code: 'bad_message',
    });
    expect(parseClientMessage('{"type":"subscribe","deploymentId":"dep-1","extra":1}')).toMatchObject({
      ok: false,
      code: 'bad_message',
    });
  });

  it('takes node subscriptions, one id at a time, and speaks of nodeId when one is wrong', () => {
    expect(parseClientMessage('{"type":"subscribe","nodeId":"n1","since":5}')).toEqual({
      ok: true,
      message: { type: 'subscribe', nodeId: 'n1', since: 5 },
    });
    expect(parseClientMessage('{"type":"unsubscribe","nodeId":"n1"}')).toMatchObject({ ok: true });
    for (const bad of [
      '{"type":"subscribe","nodeId":"n1","deploymentId":"d"}',
      '{"type":"subscribe","nodeId":""}',
      '{"type":"subscribe","nodeId":{"__proto__":{}}}',
      '{"type":"subscribe","nodeId":"n1","since":-1}',
      '{"type":"subscribe","nodeId":"n1","since":1e300}',
    ])
      expect(parseClientMessage(bad)).toMatchObject({ ok: false, code: 'bad_message' });
    expect(parseClientMessage('{"type":"subscribe","nodeId":"a b"}')).toMatchObject({ message: /nodeId/ });
  });
});

/** A socket whose buffered bytes the test controls, with the event handlers the hub attaches. */
function fakeSocket() {
  const sent: string[] = [];
  const handlers = new Map<string, (...args: unknown[]) => void>();
  const socket = {
    OPEN: 1,
    readyState: 1,
    bufferedAmount: 0,
    closed: undefined as { code: number; reason: string } | undefined,
    send(data: string | Buffer) {
      sent.push(data.toString());
    },
    close(code: number, reason: string) {
      this.closed = { code, reason };
    },
    terminate() {
      this.terminated = true;
    },
    pings: 0,
    terminated: false,
    ping() {
      this.pings += 1;
    },
    on(event: string, handler: (...args: unknown[]) => void) {
      handlers.set(event, handler);
    },
    once(event: string, handler: (...args: unknown[]) => void) {
      handlers.set(event, handler);
    },
  };
  const receive = (text: string) => handlers.get('message')?.(Buffer.from(text), false);
  const pong = () => handlers.get('pong')?.();
  return { socket, sent, receive, pong };
}

const sample = (containerId: string, ts: number, deploymentId = 'dep-1') =>
  ({ containerId, deploymentId, ts }) as unknown as Sample;

/** A subscriber over a fake socket, with limits 1000 bytes / 5 s grace and a clock the test sets. */
function subscriberOn(socket: ReturnType<typeof fakeSocket>['socket']) {
  const clock = { now: 0 };
  const counters: FeedCounters = {
    framesSent: 0,
    samplesSent: 0,
    conflated: 0,
    slowDisconnects: 0,
    duplicatesSuppressed: 0,
    figuresDropped: 0,
    hostFramesDropped: 0,
  };
  const subscriber = new Subscriber(
    socket as unknown as WebSocket,
    { maxBufferedBytes: 1000, slowGraceMs: 5000, maxSubscriptions: 5 },
    counters,
    () => clock.now,
  );
  return { subscriber, counters, clock };
}

describe('Subscriber snapshots', () => {
  it('holds live samples while a snapshot loads, then drops late duplicates of it for a while', () => {
    const { socket, sent } = fakeSocket();
    const { subscriber, counters, clock } = subscriberOn(socket);
    const frame = () => Buffer.from('shared');
    const hold = subscriber.hold('dep-1');
    expect(subscriber.offer('dep-1', [sample('c1', 5)], frame)).toBe(false);
    expect(sent).toEqual([]);
    expect(subscriber.release('dep-1', hold)?.map((s) => s.ts)).toEqual([5]);
    // The snapshot held c1 up to 7 (read from the stream): the same sample on the channel is dropped.
    subscriber.settle('dep-1', [sample('c1', 6), sample('c1', 7)]);
    expect(subscriber.offer('dep-1', [sample('c1', 7)], frame)).toBe(false);
    expect(sent).toEqual([]);
    expect(counters.duplicatesSuppressed).toBe(1);
    subscriber.offer('dep-1', [sample('c1', 7), sample('c1', 8), sample('c2', 1)], frame);
    expect((JSON.parse(sent[0]!) as { samples: Array<{ ts: number }> }).samples.map((s) => s.ts)).toEqual([8, 1]);
    // Past the settling time the shared frame goes out untouched again.
    clock.now += 60_000;
    subscriber.offer('dep-1', [sample('c1', 9)], frame);
    expect(sent[1]).toBe('shared');
  });

  it('lets only the latest hold of a deployment be released', () => {
    const { socket } = fakeSocket();
    const { subscriber } = subscriberOn(socket);
    const first = subscriber.hold('dep-1');
    // Unsubscribed and subscribed again while the first snapshot was still loading.
    subscriber.forget('dep-1');
    const second = subscriber.hold('dep-1');
    subscriber.offer('dep-1', [sample('c1', 5)], () => Buffer.from('shared'));
    expect(subscriber.release('dep-1', first)).toBeUndefined();
    expect(subscriber.release('dep-1', second)?.map((s) => s.ts)).toEqual([5]);
  });

  it('merges snapshot sources once per container and time, after `since`, oldest first', () => {
    const merged = mergeSamples(
      [
        [sample('c1', 3), sample('c1', 4)],
        [sample('c1', 4), sample('c2', 2)],
        [sample('c1', 5), sample('c1', 1)],
      ],
      1,
    );
    expect(merged.map((s) => `${s.containerId}@${s.ts}`)).toEqual(['c2@2', 'c1@3', 'c1@4', 'c1@5']);
  });
});

describe('Subscriber backpressure', () => {
  it('writes the same frame text whether samples go out at once or from a queue', () => {
    const samples = [
      { containerId: 'c1', deploymentId: 'dep-1', ts: 1, cpuPercent: 0.5, taskId: null },
      { containerId: 'c2', deploymentId: 'dep-1', ts: 2, cpuPercent: 1 },
    ] as unknown as Sample[];
    expect(sharedFrame(samples).toString()).toBe(samplesFrame(samples.map((s) => JSON.stringify(s))));
  });

  it('conflates to the latest sample per container while over the buffer limit, and sends them in one frame once under it', () => {
    const { socket, sent } = fakeSocket();
    const { subscriber, counters } = subscriberOn(socket);
    const frame = () => Buffer.from('shared');
    expect(subscriber.offer('dep', [sample('c1', 1)], frame)).toBe(false);
    expect(sent).toEqual(['shared']);
    socket.bufferedAmount = 5000;
    for (let ts = 2; ts <= 10; ts++)
      expect(subscriber.offer('dep', [sample('c1', ts), sample('c2', ts)], frame)).toBe(true);
    expect(sent).toHaveLength(1);
    expect(subscriber.queued).toBe(2);
    expect(counters.conflated).toBe(16);
    socket.bufferedAmount = 1000;
    // A queue goes out before anything newer, so the client never sees samples out of order.
    expect(subscriber.offer('dep', [sample('c1', 11)], frame)).toBe(false);
    expect(sent).toHaveLength(2);
    expect((JSON.parse(sent[1]!) as { samples: Array<{ ts: number }> }).samples.map((s) => s.ts)).toEqual([11, 10]);
    expect(subscriber.queued).toBe(0);
  });

  it('writes nothing while over the buffer limit and closes with 4008 after the grace period', () => {
    const { socket, sent } = fakeSocket();
    const { subscriber, counters, clock } = subscriberOn(socket);
    socket.bufferedAmount = 5000;
    subscriber.enqueue(sample('c1', 1));
    subscriber.flush();
    expect(sent).toHaveLength(0);
    expect(subscriber.isSlow).toBe(true);
    clock.now = 4999;
    subscriber.checkSlow();
    expect(socket.closed).toBeUndefined();
    clock.now = 5000;
    subscriber.checkSlow();
    expect(socket.closed).toEqual({ code: CLOSE.slow, reason: 'slow' });
    expect(counters.slowDisconnects).toBe(1);
  });

  it('recovers when the client catches up within the grace period', () => {
    const { socket, sent } = fakeSocket();
    const { subscriber, clock } = subscriberOn(socket);
    socket.bufferedAmount = 5000;
    subscriber.enqueue(sample('c1', 1));
    subscriber.flush();
    clock.now = 3000;
    socket.bufferedAmount = 0;
    subscriber.flush();
    expect(sent).toHaveLength(1);
    expect(subscriber.isSlow).toBe(false);
  });
});

describe('MetricsFeed delivery', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const feedWith = () =>
    new MetricsFeed(
      { maxBufferedBytes: 1000, slowGraceMs: 5000, maxSubscriptions: 5, heartbeatMs: 30_000, windowMs: 300_000 },
      {
        cache: new LiveCache({ windowMs: 300_000, maxContainers: 100, maxBytes: 1 << 20 }),
        redis: undefined,
        log: pino({ level: 'silent' }),
      },
    );
  const everything: Grant = { deployments: undefined, nodes: undefined, expiresAt: undefined, subject: undefined };
  const dataFrames = (sent: string[]) =>
    sent
      .map((f) => JSON.parse(f) as { type: string; samples?: Array<{ containerId: string; ts: number }> })
      .filter((f) => f.type === 'samples');
  /** A client of `feed` subscribed to `deploymentId`. */
  const client = (feed: MetricsFeed, deploymentId?: string) => {
    const fake = fakeSocket();
    feed.accept(fake.socket as unknown as WebSocket, everything);
    if (deploymentId !== undefined) fake.receive(JSON.stringify({ type: 'subscribe', deploymentId }));
    return fake;
  };

  it('sends each deployment only to its subscribers', () => {
    const feed = feedWith();
    const a = client(feed, 'dep-a');
    const b = client(feed, 'dep-b');
    feed.publishLocal([sample('c1', 1, 'dep-a'), sample('c2', 1, 'dep-b')]);
    expect(dataFrames(a.sent).flatMap((f) => f.samples!.map((s) => s.containerId))).toEqual(['c1']);
    expect(dataFrames(b.sent).flatMap((f) => f.samples!.map((s) => s.containerId))).toEqual(['c2']);
  });

  it('retries a backlogged subscriber on its own, without waiting for the next sample', () => {
    const feed = feedWith();
    const slow = client(feed, 'dep-a');
    slow.socket.bufferedAmount = 5000;
    feed.publishLocal([sample('c1', 1, 'dep-a')]);
    feed.publishLocal([sample('c1', 2, 'dep-a')]);
    vi.advanceTimersByTime(200);
    expect(dataFrames(slow.sent)).toHaveLength(0);
    expect(feed.stats().slowSubscribers).toBe(1);
    slow.socket.bufferedAmount = 0;
    vi.advanceTimersByTime(100);
    expect(dataFrames(slow.sent).map((f) => f.samples!.map((s) => s.ts))).toEqual([[2]]);
    expect(feed.stats()).toMatchObject({ slowSubscribers: 0, conflated: 1 });
  });

  it('closes a backlogged subscriber as slow when the grace period ends, from the retry timer', () => {
    const feed = feedWith();
    const slow = client(feed, 'dep-a');
    slow.socket.bufferedAmount = 5000;
    feed.publishLocal([sample('c1', 1, 'dep-a')]);
    vi.advanceTimersByTime(4900);
    expect(slow.socket.closed).toBeUndefined();
    vi.advanceTimersByTime(200);
    expect(slow.socket.closed).toEqual({ code: CLOSE.slow, reason: 'slow' });
    expect(feed.stats().slowDisconnects).toBe(1);
  });

  it('drops a peer that answers no ping within one heartbeat, and keeps one that does', () => {
    const feed = feedWith();
    feed.start();
    const dead = client(feed);
    const live = client(feed);
    vi.advanceTimersByTime(30_000);
    expect([dead.socket.pings, live.socket.pings]).toEqual([1, 1]);
    live.pong();
    vi.advanceTimersByTime(30_000);
    expect(dead.socket.terminated).toBe(true);
    expect(live.socket.terminated).toBe(false);
    expect(live.socket.pings).toBe(2);
    void feed.stop();
  });

  it("keeps a client whose token expires in 30 days (past setTimeout's range), and closes it at expiry", () => {
    const feed = feedWith();
    const fake = fakeSocket();
    feed.accept(fake.socket as unknown as WebSocket, {
      deployments: undefined,
      nodes: undefined,
      expiresAt: Date.now() + 30 * 86_400_000,
      subject: undefined,
    });
    vi.advanceTimersByTime(1_000);
    expect(fake.socket.closed).toBeUndefined();
    vi.advanceTimersByTime(29 * 86_400_000);
    expect(fake.socket.closed).toBeUndefined();
    vi.advanceTimersByTime(86_400_000);
    expect(fake.socket.closed).toEqual({ code: CLOSE.unauthorized, reason: 'token expired' });
  });

  it('does not take a socket that closed while its token was being verified', () => {
    const feed = feedWith();
    const fake = fakeSocket();
    fake.socket.readyState = 3;
    expect(feed.accept(fake.socket as unknown as WebSocket, everything)).toBe(false);
    expect(feed.stats()).toMatchObject({ subscribers: 0, subscriptions: 0, closedDuringAuth: 1 });
  });
});

describe('MetricsFeed remote messages', () => {
  /** A feed whose Redis subscriber is an emitter the test publishes on. */
  function feedOnFakeRedis() {
    const sub = Object.assign(new EventEmitter(), {
      status: 'ready',
      subscribe: () => Promise.resolve(),
      unsubscribe: () => Promise.resolve(),
      disconnect: () => undefined,
    });
    const pub = { status: 'ready', isCluster: false, publish: () => Promise.resolve(1) };
    const cache = new LiveCache({ windowMs: 300_000, maxContainers: 100, maxBytes: 1 << 20 });
    const feed = new MetricsFeed(
      { maxBufferedBytes: 1 << 20, slowGraceMs: 5000, maxSubscriptions: 5, heartbeatMs: 30_000, windowMs: 300_000 },
      { cache, redis: new FeedBus(pub as never, sub as never), log: pino({ level: 'silent' }) },
    );
    const publish = (deploymentId: string, message: string | Buffer) =>
      sub.emit(
        'messageBuffer',
        Buffer.from(`swarm-edge:metrics:${deploymentId}`),
        Buffer.isBuffer(message) ? message : Buffer.from(message),
      );
    return { feed, cache, publish };
  }
  const good = (deploymentId: string, ts = Date.now()) => ({
    containerId: 'abcdef0123456789',
    deploymentId,
    nodeId: 'node1',
    serviceId: 'svc1',
    taskId: 'task1',
    ts,
    cpuPercent: 12.5,
    memoryBytes: 1000,
    memoryLimitBytes: null,
    pids: 3,
    netRxBytes: 10,
    netTxBytes: 20,
    blockReadBytes: 0,
    blockWriteBytes: 0,
    netRxDelta: 1,
    netTxDelta: 2,
    blockReadDelta: 0,
    blockWriteDelta: 0,
    netRxRate: 0.2,
    netTxRate: 0.4,
    blockReadRate: 0,
    blockWriteRate: 0,
  });

  it('drops forged, malformed, oversized and skewed messages without throwing, and counts each', async () => {
    const { feed, cache, publish } = feedOnFakeRedis();
    const fake = fakeSocket();
    feed.accept(fake.socket as unknown as WebSocket, {
      deployments: undefined,
      nodes: undefined,
      expiresAt: undefined,
      subject: undefined,
    });
    fake.receive(JSON.stringify({ type: 'subscribe', deploymentId: 'dep-1' }));
    // The snapshot is sent once the (fake) stream read has failed: from the live cache.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(feed.stats().snapshotsFromCache).toBe(1);
    const before = fake.sent.length;
    const sample = good('dep-1');
    const forged: Array<string | Buffer> = [
      'null',
      '[]',
      '"x"',
      '42',
      'true',
      '{',
      '{"from":"x"}',
      '{"from":"x","samples":null}',
      '{"from":"x","samples":[null]}',
      JSON.stringify({ from: 'x', samples: [{ ...sample, cpuPercent: '99' }] }),
      JSON.stringify({ from: 'x', samples: [{ ...sample, ts: 1e300 }] }),
      JSON.stringify({ from: 'x', samples: [{ ...sample, ts: Date.now() + 600_000 }] }),
      JSON.stringify({ from: 'x', samples: [{ ...sample, ts: Date.now() - 3_600_000 }] }),
      JSON.stringify({ from: 'x', samples: [{ ...sample, extra: 'x'.repeat(100_000) }] }),
      JSON.stringify({ from: 'x', samples: [{ ...sample, deploymentId: 'dep-2' }] }),
      JSON.stringify({ from: 'x', samples: [{ ...sample, memoryBytes: -1 }] }),
      JSON.stringify({ from: 'x', samples: [{ ...sample, nodeId: 'n'.repeat(1_000) }] }),
      JSON.stringify({ from: { toString: 1 }, samples: [sample] }),
      '{"from":"x","samples":[],"__proto__":{"polluted":true}}',
      `{"from":"x","samples":[${'['.repeat(5_000)}${']'.repeat(5_000)}]}`,
      JSON.stringify({ from: 'x', samples: Array.from({ length: 2_000 }, () => sample) }),
      Buffer.alloc(2 * 1024 * 1024, 0x20),
      Buffer.from([0xff, 0xfe, 0x00, 0x01]),
    ];
    for (const message of forged) expect(() => publish('dep-1', message)).not.toThrow();
    expect(() => publish('bad channel`', JSON.stringify({ from: 'x', samples: [sample] }))).not.toThrow();
    expect(fake.sent.length).toBe(before);
    expect(cache.snapshot('dep-1')).toEqual([]);
    expect(feed.stats().remoteRejected).toBe(forged.length + 1);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();

    publish('dep-1', JSON.stringify({ from: 'another-instance', samples: [sample] }));
    expect(fake.sent.length).toBe(before + 1);
    expect(cache.snapshot('dep-1')).toHaveLength(1);
  });
});
