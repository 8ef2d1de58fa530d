import type { FastifyError, FastifyInstance } from 'fastify';
import { Errors } from './errors.js';

/**
 * One error handler for every route: client errors are answered with their code and message and
 * logged at debug (they are the client's business); the catalogue's own server-side answers (503
 * "not ready") keep their status and message; anything else is logged at error and answered with
 * a generic 500 that leaks nothing.
 */
export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const status = error.statusCode ?? 500;
    if (status < 500) {
      request.log.debug({ err: error }, 'client error');
      return reply.status(status).send({ error: error.code ?? 'EDGE_BAD_REQUEST', message: error.message });
    }
    if (typeof error.code === 'string' && error.code.startsWith('EDGE_') && status === 503) {
      return reply.status(503).header('retry-after', '5').send({ error: error.code, message: error.message });
    }
    request.log.error({ err: error }, 'request failed');
    return reply.status(500).send({ error: 'EDGE_INTERNAL', message: 'Internal server error' });
  });
  app.setNotFoundHandler((request, reply) => {
    const error = new Errors.NotFound(request.method, request.url.split('?')[0]);
    return reply.status(404).send({ error: error.code, message: error.message });
  });
}
