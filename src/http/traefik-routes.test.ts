import { gunzipSync } from 'node:zlib';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import type { PublishedState } from '../router/index.js';
import { registerErrorHandling } from './error-handler.js';
import { registerTraefikRoutes } from './traefik-routes.js';

const counts = { active: 1, noReplicas: 0, noService: 0, rejected: 0 };

describe('GET /traefik/dynamic', () => {
  it('serves the cached body, gzipped once per publish when the client accepts it', async () => {
    let state: PublishedState = {
      body: Buffer.from(JSON.stringify({ http: { middlewares: { a: 'x'.repeat(5000) } } })),
      stale: false,
      statuses: [],
      counts,
      publishedAt: 1,
      waitingFor: undefined,
    };
    const app = Fastify();
    registerErrorHandling(app);
    registerTraefikRoutes(app, { state: () => state, token: undefined });
    const plain = await app.inject({ url: '/traefik/dynamic' });
    expect(plain.statusCode).toBe(200);
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.rawPayload.equals(state.body!)).toBe(true);

    const gzipped = await app.inject({ url: '/traefik/dynamic', headers: { 'accept-encoding': 'gzip' } });
    expect(gzipped.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gzipped.rawPayload).equals(state.body!)).toBe(true);
    expect(gzipped.rawPayload.length).toBeLessThan(state.body!.length / 10);

    state = { ...state, body: Buffer.from(JSON.stringify({ http: { middlewares: { b: 'y'.repeat(5000) } } })) };
    const next = await app.inject({ url: '/traefik/dynamic', headers: { 'accept-encoding': 'gzip, br' } });
    expect(gunzipSync(next.rawPayload).equals(state.body!)).toBe(true);
  });

  it('answers 503 before the first publish and 401 without the token', async () => {
    const app = Fastify();
    registerErrorHandling(app);
    registerTraefikRoutes(app, {
      state: () => ({
        body: undefined,
        stale: false,
        statuses: [],
        counts,
        publishedAt: undefined,
        waitingFor: 'the first read',
      }),
      token: 'a-token-of-sixteen-chars',
    });
    expect((await app.inject({ url: '/traefik/dynamic' })).statusCode).toBe(401);
    const notReady = await app.inject({
      url: '/traefik/dynamic',
      headers: { authorization: 'Bearer a-token-of-sixteen-chars' },
    });
    expect(notReady.body).toContain('waiting for the first read');
    expect(notReady.statusCode).toBe(503);
  });
});

describe('ANY /__edge/unavailable', () => {
  it('answers 503 with Retry-After whatever the method, content type or body', async () => {
    const app = Fastify({ bodyLimit: 1024 });
    registerErrorHandling(app);
    registerTraefikRoutes(app, {
      state: () => ({ body: undefined, stale: false, statuses: [], counts, publishedAt: undefined, waitingFor: 'x' }),
      token: undefined,
    });
    const cases = [
      { method: 'GET' as const },
      { method: 'POST' as const, headers: { 'content-type': 'application/x-unknown' }, payload: 'abc' },
      { method: 'POST' as const, headers: { 'content-type': 'application/json' }, payload: '{not json' },
      { method: 'PUT' as const, headers: { 'content-type': 'application/json' }, payload: '' },
      { method: 'POST' as const, headers: { 'content-type': 'text/plain' }, payload: 'x'.repeat(100_000) },
      { method: 'DELETE' as const, headers: { 'content-type': 'multipart/form-data; boundary=x' }, payload: '--x' },
      { method: 'PATCH' as const, headers: { 'content-type': 'application/json' }, payload: '{"a":1}' },
    ];
    for (const request of cases) {
      const response = await app.inject({ url: '/__edge/unavailable', ...request });
      expect(response.statusCode, `${request.method} ${request.headers?.['content-type'] ?? ''}`).toBe(503);
      expect(response.headers['retry-after']).toBe('5');
    }
  });
});

describe('GET /traefik/routes', () => {
  const state = (): PublishedState => ({
    body: undefined,
    stale: false,
    statuses: [],
    counts,
    publishedAt: undefined,
    waitingFor: 'x',
  });

  it('answers only loopback clients when no token is set', async () => {
    const app = Fastify();
    registerErrorHandling(app);
    registerTraefikRoutes(app, { state, token: undefined });
    expect((await app.inject({ url: '/traefik/routes', remoteAddress: '127.0.0.1' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/traefik/routes', remoteAddress: '::1' })).statusCode).toBe(200);
    const remote = await app.inject({ url: '/traefik/routes', remoteAddress: '203.0.113.7' });
    expect(remote.statusCode).toBe(403);
    expect(remote.body).toContain('TRAEFIK_HTTP_TOKEN');
  });

  it('needs the token from anywhere when one is set, whatever the length of a wrong one', async () => {
    const app = Fastify();
    registerErrorHandling(app);
    registerTraefikRoutes(app, { state, token: 'a-token-of-sixteen-chars' });
    for (const authorization of [
      undefined,
      'Bearer x',
      'Bearer a-token-of-sixteen-charZ',
      `Bearer ${'a'.repeat(5000)}`,
    ]) {
      const response = await app.inject({
        url: '/traefik/routes',
        remoteAddress: '127.0.0.1',
        headers: authorization ? { authorization } : {},
      });
      expect(response.statusCode).toBe(401);
    }
    expect(
      (
        await app.inject({
          url: '/traefik/routes',
          remoteAddress: '203.0.113.7',
          headers: { authorization: 'Bearer a-token-of-sixteen-chars' },
        })
      ).statusCode,
    ).toBe(200);
  });
});

describe('GET /__edge/error/{status}', () => {
  it('answers the status asked for with its page, echoes nothing, and takes 500 for anything else', async () => {
    const app = Fastify();
    registerErrorHandling(app);
    registerTraefikRoutes(app, {
      state: () => ({ body: undefined, stale: false, statuses: [], counts, publishedAt: undefined, waitingFor: 'x' }),
      token: 'a-token-of-sixteen-chars',
    });
    const bad = await app.inject({ url: '/__edge/error/502' });
    expect(bad.statusCode).toBe(502);
    expect(bad.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(bad.headers['cache-control']).toBe('no-store');
    expect(bad.body).toContain('Bad Gateway');
    expect((await app.inject({ url: '/__edge/error/404' })).statusCode).toBe(404);
    for (const status of ['abc', '700', '5000', '%3Cscript%3E', '200', '50%00']) {
      const page = await app.inject({ url: `/__edge/error/${status}` });
      expect([status, page.statusCode]).toEqual([status, 500]);
      expect(page.body).not.toContain('script');
    }
  });
});
