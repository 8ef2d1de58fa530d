/**
 * Traefik's HTTP provider endpoint and the route status listing. /traefik/dynamic answers 200
 * with the cached body every time (Traefik treats anything else, 304 included, as an error), and
 * 503 only before the first publish, when Traefik keeps whatever it had.
 */
import { timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { PublishedState } from '../router/index.js';
import { UNAVAILABLE_PATH } from '../router/index.js';
import { Errors } from './errors.js';

const gzipAsync = promisify(gzip);

export function registerTraefikRoutes(app: FastifyInstance, deps: { state: () => PublishedState; token: string | undefined }): void {
  const expected = deps.token === undefined ? undefined : Buffer.from(`Bearer ${deps.token}`);
  const authorize = (request: FastifyRequest) => {
    if (!expected) return;
    const given = Buffer.from(request.headers.authorization ?? '');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new Errors.Unauthorized();
  };

  // Traefik's Go HTTP client asks for gzip by itself. The config compresses about 13× (6.2 MB →
  // 0.4 MB for 10,000 routes), so each published body is compressed once, off the event loop,
  // and shared by every request until the next publish.
  let gzipped: { source: Buffer; result: Promise<Buffer | undefined> } | undefined;
  const gzipOf = (body: Buffer) => {
    if (gzipped?.source !== body) {
      gzipped = { source: body, result: gzipAsync(body, { level: 1 }).catch(() => undefined) };
    }
    return gzipped.result;
  };

  app.get('/traefik/dynamic', async (request, reply) => {
    authorize(request);
    const { body, waitingFor } = deps.state();
    if (!body) throw new Errors.NotReady(`no routes published yet: waiting for ${waitingFor ?? 'the first publish'}`);
    reply.header('content-type', 'application/json; charset=utf-8').header('cache-control', 'no-store').header('vary', 'accept-encoding');
    if (body.length >= 1024 && /\bgzip\b/.test(request.headers['accept-encoding'] ?? '')) {
      const compressed = await gzipOf(body);
      if (compressed) return reply.header('content-encoding', 'gzip').send(compressed);
    }
    return reply.send(body);
  });

  app.get('/traefik/routes', (request, reply) => {
    authorize(request);
    const { statuses, counts, publishedAt, waitingFor } = deps.state();
    return reply.send({
      publishedAt: publishedAt === undefined ? null : new Date(publishedAt).toISOString(),
      waitingFor: waitingFor ?? null,
      counts,
      routes: statuses,
    });
  });

  // Where Traefik sends the requests of a deployment with no running replica.
  app.all(UNAVAILABLE_PATH, async (_request, reply) =>
    reply.status(503).header('retry-after', '5').header('cache-control', 'no-store').send({
      error: 'EDGE_NO_REPLICA',
      message: 'This deployment has no running replica right now. Try again shortly.',
    }),
  );
}
