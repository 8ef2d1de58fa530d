/**
 * The history API for UIs, behind the same JWT as the feed (`deployments` claim), sent as
 * `Authorization: Bearer`:
 *   GET /api/v1/deployments                     the deployments the token may see, containers and nodes now
 *   GET /api/v1/deployments/{id}/metrics        stored history (history/history-params.ts)
 *   GET /api/v1/deployments/{id}/requests       stored request metrics (traffic/request-history.ts)
 *   GET /api/v1/nodes/{id}/metrics              stored node history (nodes/node-history.ts), `nodes` claim
 * 401 without a valid token, 403 for a deployment or node the token does not list, 400 naming the
 * parameter at fault, 503 while the database is away.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isConnectionError } from '../db/errors.js';
import { allows, allowsNode, FeedAuthError, type FeedAuthenticator, type Grant } from '../feed/feed-auth.js';
import { HistoryParameterError, planHistory } from '../history/history-params.js';
import { HistoryUnavailableError, TooManyContainersError, type HistoryService } from '../history/history-service.js';
import { errorMessage } from '../lib/errors.js';
import type { NodeHistory } from '../nodes/index.js';
import type { RequestHistory } from '../traffic/index.js';

export interface HistoryRouteDeps {
  readonly history: HistoryService;
  readonly requests: RequestHistory;
  readonly nodes: NodeHistory;
  readonly authenticate: FeedAuthenticator;
  readonly retentionDays: number;
}

export function registerHistoryRoutes(app: FastifyInstance, deps: HistoryRouteDeps): void {
  app.get('/api/v1/deployments', async (request, reply) => {
    const grant = await authorise(request, reply, deps.authenticate);
    if (!grant) return reply;
    return answer(reply, request, async () => ({ deployments: await deps.history.listDeployments(grant.deployments) }));
  });

  app.get<{ Params: { id: string }; Querystring: Record<string, unknown> }>(
    '/api/v1/deployments/:id/metrics',
    async (request, reply) => {
      const grant = await authorise(request, reply, deps.authenticate);
      if (!grant) return reply;
      let plan;
      try {
        plan = planHistory(request.params.id, request.query ?? {}, {
          retentionDays: deps.retentionDays,
          now: Date.now(),
        });
      } catch (error) {
        if (error instanceof HistoryParameterError) return badParameter(reply, error.parameter, error.message);
        throw error;
      }
      if (!allows(grant, plan.deploymentId))
        return reply.status(403).send({ error: 'EDGE_FORBIDDEN', message: 'the token does not grant this deployment' });
      return answer(reply, request, () => deps.history.query(plan));
    },
  );

  app.get<{ Params: { id: string }; Querystring: Record<string, unknown> }>(
    '/api/v1/deployments/:id/requests',
    async (request, reply) => {
      const grant = await authorise(request, reply, deps.authenticate);
      if (!grant) return reply;
      const plan = planWithoutPer(request, reply, deps.retentionDays, 'request metrics are per deployment');
      if (!plan) return reply;
      if (!allows(grant, plan.deploymentId))
        return reply.status(403).send({ error: 'EDGE_FORBIDDEN', message: 'the token does not grant this deployment' });
      return answer(reply, request, async () => {
        const result = await deps.requests.query(plan);
        if (!result) throw new HistoryUnavailableError('metrics storage is not ready yet');
        return result;
      });
    },
  );

  app.get<{ Params: { id: string }; Querystring: Record<string, unknown> }>(
    '/api/v1/nodes/:id/metrics',
    async (request, reply) => {
      const grant = await authorise(request, reply, deps.authenticate);
      if (!grant) return reply;
      const plan = planWithoutPer(request, reply, deps.retentionDays, 'node history is per node');
      if (!plan) return reply;
      const nodeId = plan.deploymentId;
      if (!allowsNode(grant, nodeId))
        return reply.status(403).send({ error: 'EDGE_FORBIDDEN', message: 'the token does not grant this node' });
      return answer(reply, request, async () => {
        const result = await deps.nodes.query(nodeId, plan);
        if (!result) throw new HistoryUnavailableError('metrics storage is not ready yet');
        return result;
      });
    },
  );
}

/** The plan of a history that has one series per id (`per` refused), or undefined once a 400 is sent. */
function planWithoutPer(
  request: FastifyRequest<{ Params: { id: string }; Querystring: Record<string, unknown> }>,
  reply: FastifyReply,
  retentionDays: number,
  perRefusal: string,
) {
  try {
    if (request.query && Object.hasOwn(request.query, 'per')) throw new HistoryParameterError('per', perRefusal);
    return planHistory(request.params.id, request.query ?? {}, { retentionDays, now: Date.now() });
  } catch (error) {
    if (error instanceof HistoryParameterError) {
      void badParameter(reply, error.parameter, error.message);
      return undefined;
    }
    throw error;
  }
}

function badParameter(reply: FastifyReply, parameter: string, message: string) {
  return reply.status(400).send({ error: 'EDGE_BAD_PARAMETER', parameter, message });
}

/** The grant of the request's bearer token, or undefined once a 401 has been sent. */
async function authorise(
  request: FastifyRequest,
  reply: FastifyReply,
  authenticate: FeedAuthenticator,
): Promise<Grant | undefined> {
  const header = request.headers.authorization;
  const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
  try {
    return await authenticate(token);
  } catch (error) {
    if (!(error instanceof FeedAuthError)) request.log.warn({ err: error }, 'history authentication error');
    await reply
      .status(401)
      .header('www-authenticate', 'Bearer')
      .send({
        error: 'EDGE_UNAUTHORIZED',
        message: error instanceof FeedAuthError ? error.message : 'authentication failed',
      });
    return undefined;
  }
}

/** Runs a database read; the database being away is a 503 with Retry-After, not a 500. */
async function answer(reply: FastifyReply, request: FastifyRequest, read: () => Promise<unknown>) {
  try {
    const body = await read();
    return reply.header('cache-control', 'private, no-store').send(body);
  } catch (error) {
    if (error instanceof TooManyContainersError) return badParameter(reply, 'per', error.message);
    if (error instanceof HistoryUnavailableError || isConnectionError(error)) {
      request.log.debug({ err: error }, 'history unavailable');
      return reply
        .status(503)
        .header('retry-after', '5')
        .send({ error: 'EDGE_NOT_READY', message: `history is unavailable: ${errorMessage(error)}` });
    }
    throw error;
  }
}
