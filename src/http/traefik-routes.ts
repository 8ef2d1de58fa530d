/**
 * Traefik's HTTP provider endpoint and the route status listing. /traefik/dynamic answers 200
 * with the cached body every time (Traefik treats anything else, 304 included, as an error), and
 * 503 only before the first publish, when Traefik keeps whatever it had.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { PublishedState } from '../router/index.js';
import { UNAVAILABLE_PATH } from '../router/index.js';
import { Errors } from './errors.js';

export function registerTraefikRoutes(app: FastifyInstance, deps: { state: () => PublishedState; token: string | undefined }): void {
  const expected = deps.token === undefined ? undefined : Buffer.from(`Bearer ${deps.token}`);
  const authorize = (request: FastifyRequest) => {
    if (!expected) return;
    const given = Buffer.from(request.headers.authorization ?? '');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new Errors.Unauthorized();
  };

  app.get('/traefik/dynamic', async (request, reply) => {
    authorize(request);
    const { body, waitingFor } = deps.state();
    if (!body) throw new Errors.NotReady(`no routes published yet: waiting for ${waitingFor ?? 'the first publish'}`);
    return reply.header('content-type', 'application/json; charset=utf-8').header('cache-control', 'no-store').send(body);
  });

  app.get('/traefik/routes', (request, reply) => {
    authorize(request);
    const { statuses, publishedAt, waitingFor } = deps.state();
    const count = (state: string) => statuses.filter((s) => s.state === state).length;
    return reply.send({
      publishedAt: publishedAt === undefined ? null : new Date(publishedAt).toISOString(),
      waitingFor: waitingFor ?? null,
      counts: { active: count('active'), noReplicas: count('no-replicas'), noService: count('no-service'), rejected: count('rejected') },
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
