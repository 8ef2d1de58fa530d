import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import type { Sample } from '../metrics/index.js';
import { allows, createFeedAuthenticator } from './feed-auth.js';
import { CLOSE, parseClientMessage } from './protocol.js';
import { Subscriber, type FeedCounters } from './subscriber.js';

const secret = 'a-test-secret-that-is-long-enough-for-hs256';
const sign = (claims: Record<string, unknown>, key = secret) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(new TextEncoder().encode(key));
const jwt = createFeedAuthenticator({ mode: 'jwt', secret, jwksUrl: undefined, issuer: undefined, audience: undefined });

describe('feed authentication', () => {
  it('grants the deployments the token names, and nothing else', async () => {
    const grant = await jwt(await sign({ deployments: ['dep-a', 'dep-b'] }));
    expect(allows(grant, 'dep-a')).toBe(true);
    expect(allows(grant, 'dep-c')).toBe(false);
    expect(allows(await jwt(await sign({ deployments: ['*'] })), 'anything')).toBe(true);
  });

  it('refuses a missing, forged, claimless or alg-none token', async () => {
    await expect(jwt(undefined)).rejects.toThrow(/token is required/);
    await expect(jwt(await sign({ deployments: ['dep-a'] }, 'another-secret-that-is-long-enough-xxxx'))).rejects.toThrow(/invalid token/);
    await expect(jwt(await sign({ sub: 'x' }))).rejects.toThrow(/deployments/);
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"deployments":["*"]}').toString('base64url')}.`;
    await expect(jwt(none)).rejects.toThrow(/invalid token/);
  });

  it('refuses everyone when no key is configured, and grants everything only when disabled explicitly', async () => {
    const unconfigured = createFeedAuthenticator({ mode: 'jwt', secret: undefined, jwksUrl: undefined, issuer: undefined, audience: undefined });
    expect(unconfigured.configured).toBe(false);
    await expect(unconfigured(await sign({ deployments: ['*'] }))).rejects.toThrow(/not configured/);
    const none = createFeedAuthenticator({ mode: 'none', secret: undefined, jwksUrl: undefined, issuer: undefined, audience: undefined });
    expect(allows(await none(undefined), 'dep-x')).toBe(true);
  });
});

describe('feed protocol', () => {
  it('accepts subscribe and unsubscribe, and names what is wrong otherwise', () => {
    expect(parseClientMessage('{"type":"subscribe","deploymentId":"dep-1"}')).toEqual({ ok: true, message: { type: 'subscribe', deploymentId: 'dep-1' } });
    expect(parseClientMessage('{nope')).toMatchObject({ ok: false, code: 'bad_json' });
    expect(parseClientMessage('{"type":"drop_tables"}')).toMatchObject({ ok: false, code: 'bad_message' });
    expect(parseClientMessage('{"type":"subscribe","deploymentId":"a b`"}')).toMatchObject({ ok: false, code: 'bad_message' });
    expect(parseClientMessage('{"type":"subscribe","deploymentId":"dep-1","extra":1}')).toMatchObject({ ok: false, code: 'bad_message' });
  });
});

/** A socket whose buffered bytes the test controls. */
function fakeSocket() {
  const sent: string[] = [];
  const callbacks: Array<() => void> = [];
  const socket = {
    OPEN: 1,
    readyState: 1,
    bufferedAmount: 0,
    closed: undefined as { code: number; reason: string } | undefined,
    send(data: string | Buffer, options?: object, cb?: () => void) {
      sent.push(data.toString());
      if (cb) callbacks.push(cb);
    },
    close(code: number, reason: string) {
      this.closed = { code, reason };
    },
    terminate() {},
  };
  return { socket, sent, drain: () => callbacks.splice(0).forEach((cb) => cb()) };
}

const sample = (containerId: string, ts: number) => ({ containerId, deploymentId: 'dep-1', ts }) as unknown as Sample;

/** A subscriber over a fake socket, with limits 1000 bytes / 5 s grace and a clock the test sets. */
function subscriberOn(socket: ReturnType<typeof fakeSocket>['socket']) {
  const clock = { now: 0 };
  const counters: FeedCounters = { framesSent: 0, samplesSent: 0, conflated: 0, slowDisconnects: 0 };
  const subscriber = new Subscriber(socket as unknown as WebSocket, { maxBufferedBytes: 1000, slowGraceMs: 5000, maxSubscriptions: 5 }, counters, () => clock.now);
  return { subscriber, counters, clock };
}

describe('Subscriber backpressure', () => {
  it('conflates to the latest sample per container while a frame is in flight', () => {
    const { socket, sent, drain } = fakeSocket();
    const { subscriber, counters } = subscriberOn(socket);
    subscriber.enqueue(sample('c1', 1));
    subscriber.flush();
    for (let ts = 2; ts <= 10; ts++) {
      subscriber.enqueue(sample('c1', ts));
      subscriber.enqueue(sample('c2', ts));
      subscriber.flush();
    }
    expect(sent).toHaveLength(1);
    expect(subscriber.queued).toBe(2);
    expect(counters.conflated).toBe(16);
    drain();
    expect(sent).toHaveLength(2);
    expect((JSON.parse(sent[1]!) as { samples: Array<{ ts: number }> }).samples.map((s) => s.ts)).toEqual([10, 10]);
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
