import type { FastifyInstance } from 'fastify';
import type { HealthRegistry } from '../health/index.js';

/**
 * GET /health answers from memory (the registry is kept current by the background loops), so a
 * scraper hitting it hard costs nothing and it answers even while every dependency is down.
 * 200 while the service can do its job (ok or degraded), 503 when it cannot. The serialised
 * answer is reused for up to REUSE_MS, so a scraper storm costs one report per interval, not one
 * per request; a status change is never hidden for longer than that.
 */
const REUSE_MS = 250;

export function registerHealthRoutes(app: FastifyInstance, deps: { health: HealthRegistry; startedAt: number }): void {
  let cached: { at: number; code: number; body: string } | undefined;
  deps.health.onChange(() => {
    cached = undefined;
  });
  app.get('/health', (_request, reply) => {
    const now = Date.now();
    if (cached === undefined || now - cached.at >= REUSE_MS) {
      const report = deps.health.report();
      const body = JSON.stringify({ ...report, uptimeSeconds: Math.round((now - deps.startedAt) / 1000) });
      cached = { at: now, code: report.status === 'unavailable' ? 503 : 200, body };
    }
    return reply
      .status(cached.code)
      .header('cache-control', 'no-store')
      .header('content-type', 'application/json; charset=utf-8')
      .send(cached.body);
  });
}
