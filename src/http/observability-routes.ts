import type { FastifyInstance } from 'fastify';

/** GET /metrics/observability: the metrics system's own figures as JSON (see the README). */
export function registerObservabilityRoutes(app: FastifyInstance, deps: { report: () => unknown }): void {
  app.get('/metrics/observability', (_request, reply) => reply.header('cache-control', 'no-store').send(deps.report()));
}
