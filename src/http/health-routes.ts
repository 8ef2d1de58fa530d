import type { FastifyInstance } from 'fastify';
import type { HealthRegistry } from '../health/index.js';

/**
 * GET /health answers from memory (the registry is kept current by the background loops), so a
 * scraper hitting it hard costs nothing and it answers even while every dependency is down.
 * 200 while the service can do its job (ok or degraded), 503 when it cannot.
 */
export function registerHealthRoutes(app: FastifyInstance, deps: { health: HealthRegistry; startedAt: number }): void {
  app.get('/health', async (_request, reply) => {
    const report = deps.health.report();
    return reply
      .status(report.status === 'unavailable' ? 503 : 200)
      .header('cache-control', 'no-store')
      .send({ ...report, uptimeSeconds: Math.round((Date.now() - deps.startedAt) / 1000) });
  });
}
