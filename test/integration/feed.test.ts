/**
 * The websocket feed over real sockets: authentication, protocol errors, a stalled client closed
 * as slow while a reading client keeps up, and two instances sharing a real Redis.
 */
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { CLOSE } from '../../src/feed/protocol.js';
import type { Sample } from '../../src/metrics/index.js';
import type { HostSample } from '../../src/nodes/index.js';
import type { RequestFigures } from '../../src/traffic/index.js';
import { missingTools, startRedis, waitFor, type TestRedis } from '../harness/index.js';

import { connect, errorLines, samples, SECRET, startInstance, token, type Instance } from './feed-fixtures.js';

const skip = missingTools(['redis-server']);

describe.skipIf(skip)('websocket feed', () => {
  let redis: TestRedis;
  const instances: Instance[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const instance of instances) {
      await instance.feed.stop();
      await instance.app.close();
      instance.redis?.disconnect();
    }
    await redis?.destroy();
  });
  const start = async (options: Parameters<typeof startInstance>[0] = {}) => {
    const instance = await startInstance(options);
    instances.push(instance);
    return instance;
  };

  it('sends a snapshot, then new samples, only of granted deployments', async () => {
    const { url, feed } = await start();
    feed.publishLocal(samples('dep-a', 2));
    const client = connect(`${url}?token=${await token(['dep-a'])}`);
    await client.opened;
    client.send({ type: 'subscribe', deploymentId: 'dep-a' });
    client.send({ type: 'subscribe', deploymentId: 'dep-b' });
    await waitFor('subscribed and refused', () => client.frames.length >= 3, 5_000, 20);
    expect(client.frames[0]).toEqual({ type: 'subscribed', deploymentId: 'dep-a' });
    expect(client.frames[1]).toMatchObject({ type: 'snapshot', deploymentId: 'dep-a' });
    expect((client.frames[1]!.samples as unknown[]).length).toBe(0); // publishLocal does not fill the cache; the collector does
    expect(client.frames[2]).toMatchObject({ type: 'error', code: 'forbidden', deploymentId: 'dep-b' });
    feed.publishLocal([...samples('dep-a', 2), ...samples('dep-b', 2)]);
    await waitFor('samples', () => client.frames.some((f) => f.type === 'samples'), 5_000, 20);
    const delivered = client.frames.filter((f) => f.type === 'samples').flatMap((f) => f.samples as Sample[]);
    expect(delivered.map((s) => s.deploymentId)).toEqual(['dep-a', 'dep-a']);
    client.socket.close();
  });

  it('refuses a missing or forged token with 4001, bad messages with error frames, and a 1 MB frame with 1009', async () => {
    const { url } = await start();
    const anonymous = connect(url);
    expect(await anonymous.closed).toMatchObject({ code: CLOSE.unauthorized });
    expect(anonymous.frames[0]).toMatchObject({ type: 'error', code: 'unauthorized' });
    const forged = connect(`${url}?token=${(await token(['dep-a'])).slice(0, -4)}AAAA`);
    expect((await forged.closed).code).toBe(CLOSE.unauthorized);

    const client = connect(`${url}?token=${await token(['dep-a'])}`);
    await client.opened;
    client.send('{not json');
    client.send({ type: 'subscribe', deploymentId: 'a`) || Host(`b' });
    client.send({ type: 'format_disk' });
    client.socket.send(Buffer.from([0x7b, 0x7d]), { binary: true });
    await waitFor('four error frames', () => client.frames.length >= 4, 5_000, 20);
    expect(client.frames.map((f) => f.code)).toEqual(['bad_json', 'bad_message', 'bad_message', 'bad_message']);
    expect(client.frames[3]!.message).toMatch(/binary/);

    // Frames sent at once on open arrive while the token is being checked: they are held, and
    // replayed as they came (a binary one is still refused as binary).
    const slowAuth = await start({ authDelayMs: 300 });
    const early = new WebSocket(`${slowAuth.url}?token=${await token(['dep-a'])}`);
    const earlyFrames: Array<Record<string, unknown>> = [];
    early.on('message', (data: Buffer) => earlyFrames.push(JSON.parse(data.toString()) as Record<string, unknown>));
    early.on('open', () => {
      early.send(Buffer.from('{"type":"subscribe","deploymentId":"dep-a"}'), { binary: true });
      early.send(JSON.stringify({ type: 'subscribe', deploymentId: 'dep-a' }));
    });
    await waitFor('both early frames answered', () => earlyFrames.length >= 2, 5_000, 20);
    expect(earlyFrames[0]).toMatchObject({
      type: 'error',
      code: 'bad_message',
      message: expect.stringMatching(/binary/) as unknown,
    });
    expect(earlyFrames[1]).toMatchObject({ type: 'subscribed', deploymentId: 'dep-a' });
    early.close();
    client.send({ type: 'subscribe', deploymentId: 'dep-a' });
    await waitFor('still serving', () => client.frames.some((f) => f.type === 'subscribed'), 5_000, 20);
    client.send('x'.repeat(1024 * 1024));
    expect((await client.closed).code).toBe(CLOSE.tooBig);
    // Anyone can send one: counted and logged at debug, never at error with a stack.
    expect(errorLines).toEqual([]);
  });

  it('leaves no subscriber behind clients that vanish while their token is verified', async () => {
    const { app, feed, url } = await startInstance({ authDelayMs: 30 });
    try {
      const jwt = await token(['dep-ghost']);
      for (let round = 0; round < 10; round++) {
        await Promise.all(
          Array.from({ length: 30 }, async () => {
            const client = connect(`${url}?token=${jwt}`);
            await client.opened.catch(() => undefined);
            client.send({ type: 'subscribe', deploymentId: 'dep-ghost' });
            client.socket.terminate();
            await client.closed;
          }),
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(feed.stats()).toMatchObject({ subscribers: 0, subscriptions: 0, ghostSubscribers: 0 });
      expect(feed.stats().closedDuringAuth).toBeGreaterThan(0);
    } finally {
      await app.close();
    }
  });

  it('closes a stalled client as slow while a reading client keeps receiving', async () => {
    const { url, feed } = await start({ maxBufferedBytes: 64 * 1024, slowGraceMs: 1_000 });
    const jwt = await token(['dep-slow']);
    const reader = connect(`${url}?token=${jwt}`);
    const stalled = connect(`${url}?token=${jwt}`);
    await Promise.all([reader.opened, stalled.opened]);
    reader.send({ type: 'subscribe', deploymentId: 'dep-slow' });
    stalled.send({ type: 'subscribe', deploymentId: 'dep-slow' });
    await waitFor('both subscribed', () => reader.frames.length >= 2 && stalled.frames.length >= 2, 5_000, 20);
    // The stalled client stops reading: the kernel buffers fill, then the server's.
    (stalled.socket as unknown as { _socket: { pause(): void } })._socket.pause();
    const rssBefore = process.memoryUsage().rss;
    let readerLastSeen = Date.now();
    let worstGap = 0;
    reader.socket.on('message', () => {
      worstGap = Math.max(worstGap, Date.now() - readerLastSeen);
      readerLastSeen = Date.now();
    });
    const started = Date.now();
    // ~20 MB/s of samples (distinct containers, so conflation cannot absorb them all).
    while (Date.now() - started < 15_000 && feed.stats().slowDisconnects === 0) {
      feed.publishLocal(samples('dep-slow', 200, 500));
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(feed.stats().slowDisconnects).toBe(1);
    // A client that does not read cannot read the close frame either: once it reads again, it
    // finds the connection closed (4008 if the frame got through, 1006 if it was cut).
    (stalled.socket as unknown as { _socket: { resume(): void } })._socket.resume();
    expect([CLOSE.slow, 1006]).toContain((await stalled.closed).code);
    // The reader kept receiving throughout, without long pauses.
    expect(worstGap).toBeLessThan(1_000);
    expect(Date.now() - readerLastSeen).toBeLessThan(1_000);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(200 * 1024 * 1024);
    reader.socket.close();
  });

  it('delivers samples collected by another instance through Redis, and keeps local delivery while Redis is down', async () => {
    const a = await start({ redisUrl: redis.url });
    const b = await start({ redisUrl: redis.url });
    await waitFor(
      'redis connections ready',
      () => a.redis?.status === 'ready' && b.redis?.status === 'ready',
      10_000,
      50,
    );
    const client = connect(`${a.url}?token=${await token(['dep-remote'])}`);
    await client.opened;
    client.send({ type: 'subscribe', deploymentId: 'dep-remote' });
    await waitFor('subscribed', () => client.frames.length >= 2, 5_000, 20);
    await waitFor(
      'remote samples',
      async () => {
        b.feed.publishLocal(samples('dep-remote', 1));
        await new Promise((resolve) => setTimeout(resolve, 100));
        return client.frames.some((f) => f.type === 'samples');
      },
      10_000,
      0,
    );
    expect(a.feed.stats().remoteSamples).toBeGreaterThan(0);

    await redis.stop();
    const before = client.frames.length;
    a.feed.publishLocal(samples('dep-remote', 1));
    await waitFor('local delivery without redis', () => client.frames.length > before, 5_000, 20);
    await redis.start();
    await waitFor(
      'remote delivery again after redis restarts',
      async () => {
        const count = client.frames.length;
        b.feed.publishLocal(samples('dep-remote', 1));
        await new Promise((resolve) => setTimeout(resolve, 200));
        return client.frames.length > count;
      },
      20_000,
      0,
    );
    client.socket.close();
  });

  it('serves the whole window of containers collected elsewhere to the first subscriber of another instance', async () => {
    const collector = await start({ redisUrl: redis.url });
    const other = await start({ redisUrl: redis.url });
    await waitFor(
      'redis ready',
      () => collector.redis?.status === 'ready' && other.redis?.status === 'ready',
      10_000,
      50,
    );
    // Published before anyone on `other` watches: only the window stream can hold them.
    const published: Sample[] = [];
    for (let i = 0; i < 20; i++) {
      const batch = samples('dep-window', 3);
      published.push(...batch);
      collector.feed.publishLocal(batch);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    const client = connect(`${other.url}?token=${await token(['dep-window'])}`);
    await client.opened;
    client.send({ type: 'subscribe', deploymentId: 'dep-window' });
    await waitFor('snapshot', () => client.frames.some((f) => f.type === 'snapshot'), 5_000, 20);
    const snapshot = client.frames.find((f) => f.type === 'snapshot') as { samples: Sample[]; recovered?: boolean };
    expect(snapshot.samples.map((x) => `${x.containerId}@${x.ts}`).sort()).toEqual(
      published.map((x) => `${x.containerId}@${x.ts}`).sort(),
    );
    expect(snapshot.recovered).toBeUndefined();
    expect(other.feed.stats().snapshotsFromStream).toBeGreaterThan(0);
    client.socket.close();
  });

  it('resumes on another instance after the first one dies: no gap and no duplicate', async () => {
    const collector = await start({ redisUrl: redis.url });
    const first = await start({ redisUrl: redis.url });
    const second = await start({ redisUrl: redis.url });
    await waitFor(
      'redis ready',
      () => [collector, first, second].every((i) => i.redis?.status === 'ready'),
      10_000,
      50,
    );
    const published: Sample[] = [];
    const tick = () => {
      const batch = samples('dep-resume', 2);
      published.push(...batch);
      collector.feed.publishLocal(batch);
    };
    for (let i = 0; i < 5; i++) tick();
    const timer = setInterval(tick, 25);
    try {
      const received: Sample[] = [];
      const take = (frames: Array<Record<string, unknown>>) => {
        for (const f of frames)
          if (f.type === 'snapshot' || f.type === 'samples') received.push(...(f.samples as Sample[]));
      };
      const a = connect(`${first.url}?token=${await token(['dep-resume'])}`);
      await a.opened;
      a.send({ type: 'subscribe', deploymentId: 'dep-resume' });
      await waitFor(
        'live samples on the first instance',
        () => a.frames.filter((f) => f.type === 'samples').length >= 10,
        10_000,
        20,
      );
      // The instance dies with the client on it; samples keep coming meanwhile.
      await first.feed.stop();
      await first.app.close();
      await a.closed;
      take(a.frames);
      const since = Math.max(...received.map((x) => x.ts));
      await new Promise((resolve) => setTimeout(resolve, 300));
      const b = connect(`${second.url}?token=${await token(['dep-resume'])}`);
      await b.opened;
      b.send({ type: 'subscribe', deploymentId: 'dep-resume', since });
      await waitFor(
        'resumed and live again',
        () => b.frames.filter((f) => f.type === 'samples').length >= 10,
        10_000,
        20,
      );
      clearInterval(timer);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const resumed = b.frames.find((f) => f.type === 'snapshot') as { recovered: boolean; samples: Sample[] };
      expect(resumed.recovered).toBe(true);
      expect(resumed.samples.length).toBeGreaterThan(0);
      expect(resumed.samples.every((x) => x.ts > since)).toBe(true);
      take(b.frames);
      const keys = received.map((x) => `${x.containerId}@${x.ts}`);
      expect(new Set(keys).size).toBe(keys.length);
      const firstSeen = Math.min(...received.map((x) => x.ts));
      const expected = published.filter((x) => x.ts >= firstSeen).map((x) => `${x.containerId}@${x.ts}`);
      expect(keys.sort()).toEqual(expected.sort());
      b.socket.close();

      // A `since` older than the window: the full window, said so.
      const c = connect(`${second.url}?token=${await token(['dep-resume'])}`);
      await c.opened;
      c.send({ type: 'subscribe', deploymentId: 'dep-resume', since: Date.now() - 3_600_000 });
      await waitFor('full snapshot', () => c.frames.some((f) => f.type === 'snapshot'), 5_000, 20);
      const full = c.frames.find((f) => f.type === 'snapshot') as { recovered: boolean; samples: Sample[] };
      expect(full.recovered).toBe(false);
      expect(full.samples).toHaveLength(published.length);
      c.socket.close();
    } finally {
      clearInterval(timer);
    }
  });

  it('refuses forged window stream entries and counts them', async () => {
    const instance = await start({ redisUrl: redis.url });
    await waitFor('redis ready', () => instance.redis?.status === 'ready', 10_000, 50);
    const key = 'swarm-edge:window:dep-forged';
    const good = samples('dep-forged', 1)[0]!;
    await instance.redis!.xadd(key, '*', 'm', 'not json');
    await instance.redis!.xadd(key, '*', 'x', JSON.stringify({ from: 'x', samples: [good] }));
    await instance.redis!.xadd(
      key,
      '*',
      'm',
      JSON.stringify({ from: 'x', samples: [{ ...good, deploymentId: 'dep-other' }] }),
    );
    await instance.redis!.xadd(key, '*', 'm', JSON.stringify({ from: 'x', samples: [{ ...good, ts: 1e300 }] }));
    await instance.redis!.xadd(key, '*', 'm', '{"from":"x","samples":[],"__proto__":{"polluted":true}}');
    await instance.redis!.xadd(key, '*', 'm', JSON.stringify({ from: 'x', samples: [good] }));
    const client = connect(`${instance.url}?token=${await token(['dep-forged'])}`);
    await client.opened;
    client.send({ type: 'subscribe', deploymentId: 'dep-forged' });
    await waitFor('snapshot', () => client.frames.some((f) => f.type === 'snapshot'), 5_000, 20);
    const snapshot = client.frames.find((f) => f.type === 'snapshot') as { samples: Sample[] };
    expect(snapshot.samples.map((x) => x.ts)).toEqual([good.ts]);
    expect(instance.feed.stats().streamRejected).toBe(5);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    client.socket.close();
  });

  it('carries request figures across instances, keeps the latest for snapshots anywhere, and refuses forged ones', async () => {
    const a = await start({ redisUrl: redis.url });
    const b = await start({ redisUrl: redis.url });
    await waitFor('redis ready', () => a.redis?.status === 'ready' && b.redis?.status === 'ready', 10_000, 50);
    const figures = (ts: number, requests: number): RequestFigures => ({
      deploymentId: 'dep-req',
      ts,
      intervalMs: 5_000,
      requests,
      requestsPerSecond: requests / 5,
      status: { '1xx': 0, '2xx': requests, '3xx': 0, '4xx': 0, '5xx': 0, other: 0 },
      requestBytes: 10 * requests,
      responseBytes: 100 * requests,
      latencyMs: { p50: 12.5, p95: 40, p99: null },
      openConnections: 2,
    });
    const client = connect(`${a.url}?token=${await token(['dep-req'])}`);
    await client.opened;
    client.send({ type: 'subscribe', deploymentId: 'dep-req' });
    await waitFor('snapshot', () => client.frames.some((f) => f.type === 'snapshot'), 5_000, 20);
    expect(client.frames.find((f) => f.type === 'snapshot')).toMatchObject({ requests: null });
    await waitFor(
      'figures from the other instance',
      async () => {
        b.feed.publishRequests([figures(Date.now(), 7)]);
        await new Promise((resolve) => setTimeout(resolve, 100));
        return client.frames.some((f) => f.type === 'requests');
      },
      10_000,
    );
    expect(client.frames.find((f) => f.type === 'requests')).toMatchObject({ deploymentId: 'dep-req', requests: 7 });

    // Forged on the channel: wrong deployment, bad shape, skewed clock, prototype keys.
    const channel = 'swarm-edge:metrics:dep-req';
    const forged = [
      JSON.stringify({ from: 'x', requests: { ...figures(Date.now(), 1), deploymentId: 'dep-other' } }),
      JSON.stringify({ from: 'x', requests: { ...figures(Date.now(), -1) } }),
      JSON.stringify({ from: 'x', requests: figures(Date.now() + 3_600_000, 1) }),
      JSON.stringify({ from: 'x', requests: { ...figures(Date.now(), 1), extra: 1 } }),
      `{"from":"x","requests":${JSON.stringify(figures(Date.now(), 1))},"__proto__":{"polluted":true}}`,
    ];
    const rejectedBefore = a.feed.stats().remoteRejected;
    for (const message of forged) await b.redis!.publish(channel, message);
    await waitFor(
      'forged figures refused',
      () => a.feed.stats().remoteRejected - rejectedBefore >= forged.length,
      5_000,
      20,
    );
    expect(client.frames.filter((f) => f.type === 'requests')).toHaveLength(1);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();

    // A first subscriber on a third instance gets the latest figures in its snapshot, from Redis.
    const c = await start({ redisUrl: redis.url });
    await waitFor('redis ready', () => c.redis?.status === 'ready', 10_000, 50);
    const late = connect(`${c.url}?token=${await token(['dep-req'])}`);
    await late.opened;
    late.send({ type: 'subscribe', deploymentId: 'dep-req' });
    await waitFor('snapshot', () => late.frames.some((f) => f.type === 'snapshot'), 5_000, 20);
    expect(late.frames.find((f) => f.type === 'snapshot')).toMatchObject({ requests: { requests: 7 } });
    client.socket.close();
    late.socket.close();
  });

  it('serves a node feed on any instance: the window as a snapshot, then live, a resume without gap or duplicate, only with a nodes claim', async () => {
    const a = await start({ redisUrl: redis.url });
    const b = await start({ redisUrl: redis.url });
    await waitFor('redis ready', () => a.redis?.status === 'ready' && b.redis?.status === 'ready', 10_000, 50);
    const base = Date.now() - 60_000;
    const host = (i: number): HostSample => ({
      ts: base + i * 1_000,
      cpuPercent: i % 100,
      cpus: 4,
      load1: 0.5,
      load5: 0.4,
      load15: 0.3,
      memoryTotalBytes: 8e9,
      memoryAvailableBytes: 4e9,
      memoryUsedBytes: 4e9,
      swapTotalBytes: 0,
      swapUsedBytes: 0,
      diskReadBytes: i * 100,
      diskWrittenBytes: i * 200,
      diskReadRate: 100,
      diskWriteRate: 200,
      netRxBytes: i * 1_000,
      netTxBytes: i * 2_000,
      netRxRate: 1_000,
      netTxRate: 2_000,
      disks: [{ path: '/', totalBytes: 1e11, usedBytes: 5e10, availableBytes: 5e10 }],
    });
    // Instance b runs on node-b; its first samples are published before anyone watches.
    for (let i = 0; i < 5; i++) b.feed.publishHost('node-b', host(i));

    // A deployment-only token may not watch a node; a token naming another node neither.
    const deploymentOnly = connect(`${a.url}?token=${await token(['dep-a'])}`);
    await deploymentOnly.opened;
    deploymentOnly.send({ type: 'subscribe', nodeId: 'node-b' });
    await waitFor('refused', () => deploymentOnly.frames.length >= 1, 5_000, 20);
    expect(deploymentOnly.frames[0]).toMatchObject({ type: 'error', code: 'forbidden', nodeId: 'node-b' });
    // A claim that is there must name something: an empty one refuses the token, not grants nothing.
    const malformed = connect(`${a.url}?token=${await token([], { nodes: ['node-c'] })}`);
    expect(await malformed.closed).toMatchObject({ code: CLOSE.unauthorized });
    const nodesOnly = connect(
      `${a.url}?token=${await new SignJWT({ nodes: ['node-c'] })
        .setProtectedHeader({ alg: 'HS256' })
        .setExpirationTime('10m')
        .sign(new TextEncoder().encode(SECRET))}`,
    );
    await nodesOnly.opened;
    nodesOnly.send({ type: 'subscribe', nodeId: 'node-b' });
    nodesOnly.send({ type: 'subscribe', deploymentId: 'dep-a' });
    await waitFor('refused', () => nodesOnly.frames.length >= 2, 5_000, 20);
    expect(nodesOnly.frames.map((f) => f.code)).toEqual(['forbidden', 'forbidden']);

    // On instance a (another node), the first watcher gets b's window from Redis, then live frames.
    const operator = connect(`${a.url}?token=${await token(['*'], { nodes: ['*'] })}`);
    await operator.opened;
    operator.send({ type: 'subscribe', nodeId: 'node-b' });
    await waitFor('snapshot', () => operator.frames.some((f) => f.type === 'snapshot'), 5_000, 20);
    expect(operator.frames[0]).toEqual({ type: 'subscribed', nodeId: 'node-b' });
    const snapshot = operator.frames.find((f) => f.type === 'snapshot')!;
    expect((snapshot.host as HostSample[]).map((h) => h.ts)).toEqual([0, 1, 2, 3, 4].map((i) => base + i * 1_000));
    for (let i = 5; i < 10; i++) b.feed.publishHost('node-b', host(i));
    const live = () => operator.frames.filter((f) => f.type === 'host').map((f) => (f.sample as HostSample).ts);
    await waitFor('live host frames', () => live().length >= 5, 5_000, 20);
    expect(live()).toEqual([5, 6, 7, 8, 9].map((i) => base + i * 1_000));
    expect(operator.frames.find((f) => f.type === 'host')).toMatchObject({ nodeId: 'node-b' });

    // Forged on the node's channel: another node's sample, a bad shape, a skewed clock, prototype keys.
    const channel = 'swarm-edge:node:node-b';
    const message = (h: unknown, nodeId = 'node-b') => JSON.stringify({ from: 'x', nodeId, host: h });
    const forged = [
      message(host(20), 'node-x'),
      message({ ...host(21), cpuPercent: 250 }),
      message({ ...host(22), ts: Date.now() + 3_600_000 }),
      message({ ...host(23), extra: 1 }),
      `{"from":"x","nodeId":"node-b","host":${JSON.stringify(host(24))},"__proto__":{"polluted":true}}`,
      '{"from":',
    ];
    const rejectedBefore = a.feed.stats().remoteRejected;
    for (const m of forged) await b.redis!.publish(channel, m);
    await waitFor('forged refused', () => a.feed.stats().remoteRejected - rejectedBefore >= forged.length, 5_000, 20);
    expect(live()).toHaveLength(5);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();

    // A client that lost its connection resumes on a third instance from its last sample.
    operator.socket.close();
    for (let i = 10; i < 13; i++) b.feed.publishHost('node-b', host(i));
    const c = await start({ redisUrl: redis.url });
    await waitFor('redis ready', () => c.redis?.status === 'ready', 10_000, 50);
    const again = connect(`${c.url}?token=${await token(['dep-a'], { nodes: ['node-b'] })}`);
    await again.opened;
    again.send({ type: 'subscribe', nodeId: 'node-b', since: base + 9_000 });
    await waitFor('resume', () => again.frames.some((f) => f.type === 'snapshot'), 5_000, 20);
    const resume = again.frames.find((f) => f.type === 'snapshot')!;
    expect(resume.recovered).toBe(true);
    expect((resume.host as HostSample[]).map((h) => h.ts)).toEqual([10, 11, 12].map((i) => base + i * 1_000));
    again.send({ type: 'unsubscribe', nodeId: 'node-b' });
    again.send({ type: 'unsubscribe', nodeId: 'node-b' });
    await waitFor('unsubscribed', () => again.frames.length >= 4, 5_000, 20);
    expect(again.frames.slice(2).map((f) => `${String(f.type)}:${String(f.code)}`)).toEqual([
      'unsubscribed:undefined',
      'error:not_subscribed',
    ]);
    expect(c.feed.stats().nodes.nodeSubscriptions).toBe(0);
    deploymentOnly.socket.close();
    nodesOnly.socket.close();
    again.socket.close();
  });

  it('tells subscribers on every instance of a container that exited by itself, and refuses forged exits', async () => {
    const a = await start({ redisUrl: redis.url });
    const b = await start({ redisUrl: redis.url });
    await waitFor('redis ready', () => a.redis?.status === 'ready' && b.redis?.status === 'ready', 10_000, 50);
    const client = connect(`${a.url}?token=${await token(['dep-exit'])}`);
    await client.opened;
    client.send({ type: 'subscribe', deploymentId: 'dep-exit' });
    await waitFor('snapshot', () => client.frames.some((f) => f.type === 'snapshot'), 5_000, 20);
    const exit = (ts: number) => ({
      deploymentId: 'dep-exit',
      containerId: 'e'.repeat(64),
      nodeId: 'node-b',
      exitCode: 137,
      reason: 'oom' as const,
      ts,
    });
    await waitFor(
      'the exit from the other instance',
      async () => {
        b.feed.publishExit(exit(Date.now()));
        await new Promise((resolve) => setTimeout(resolve, 100));
        return client.frames.some((f) => f.type === 'exit');
      },
      10_000,
    );
    expect(client.frames.find((f) => f.type === 'exit')).toMatchObject({
      type: 'exit',
      deploymentId: 'dep-exit',
      exitCode: 137,
      reason: 'oom',
    });
    const exits = () => client.frames.filter((f) => f.type === 'exit').length;
    const seen = exits();
    const forged = [
      JSON.stringify({ from: 'x', exit: { ...exit(Date.now()), deploymentId: 'dep-other' } }),
      JSON.stringify({ from: 'x', exit: { ...exit(Date.now()), reason: 'requested' } }),
      JSON.stringify({ from: 'x', exit: { ...exit(Date.now()), exitCode: 999 } }),
      JSON.stringify({ from: 'x', exit: { ...exit(Date.now()), containerId: 'short' } }),
      JSON.stringify({ from: 'x', exit: exit(Date.now() + 3_600_000) }),
      `{"from":"x","exit":${JSON.stringify(exit(Date.now()))},"__proto__":{"polluted":true}}`,
    ];
    const rejectedBefore = a.feed.stats().remoteRejected;
    for (const message of forged) await b.redis!.publish('swarm-edge:metrics:dep-exit', message);
    await waitFor(
      'forged exits refused',
      () => a.feed.stats().remoteRejected - rejectedBefore >= forged.length,
      5_000,
      20,
    );
    expect(exits()).toBe(seen);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    client.socket.close();
  });
});
