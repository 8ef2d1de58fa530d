/**
 * The catalogue of errors the HTTP surface answers with. Each has a stable code that clients can
 * match on; anything not in here becomes a generic 500 (see error-handler.ts).
 */
import createError from '@fastify/error';

export const Errors = {
  Unauthorized: createError('EDGE_UNAUTHORIZED', 'Missing or invalid bearer token', 401),
  NotFound: createError('EDGE_NOT_FOUND', 'Route %s %s not found', 404),
  NotReady: createError('EDGE_NOT_READY', '%s', 503),
  Forbidden: createError('EDGE_FORBIDDEN', '%s', 403),
} as const;
