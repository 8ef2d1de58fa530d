import { gunzipSync } from 'node:zlib';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import type { PublishedState } from '../router/index.js';
import { registerErrorHandling } from './error-handler.js';
import { registerTraefikRoutes } from './traefik-routes.js';

const counts = { active: 1, noReplicas: 0, noService: 0, rejected: 0 };

describe('GET /traefik/dynamic', () => {
  it('serves the cached body, gzipped once per publish when the client accepts it', async () => {
    let state: PublishedState = { body: Buffer.from(JSON.stringify({ http: { middlewares: { a: 'x'.repeat(5000) } } })), statuses: [], counts, publishedAt: 1, waitingFor: undefined };
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
    registerTraefikRoutes(app, { state: () => ({ body: undefined, statuses: [], counts, publishedAt: undefined, waitingFor: 'the first read' }), token: 'a-token-of-sixteen-chars' });
    expect((await app.inject({ url: '/traefik/dynamic' })).statusCode).toBe(401);
    const notReady = await app.inject({ url: '/traefik/dynamic', headers: { authorization: 'Bearer a-token-of-sixteen-chars' } });
    expect(notReady.body).toContain('waiting for the first read');
    expect(notReady.statusCode).toBe(503);
  });
});
