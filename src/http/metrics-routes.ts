import type { FastifyInstance } from 'fastify';
import type { Telemetry } from '../telemetry/index.js';

export function registerMetricsRoutes(app: FastifyInstance, deps: { telemetry: Telemetry }): void {
  app.get('/metrics', async (_request, reply) =>
    reply.header('content-type', deps.telemetry.registry.contentType).send(await deps.telemetry.registry.metrics()),
  );
}
