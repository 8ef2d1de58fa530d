/**
 * GET /openapi.json: the HTTP surface described as OpenAPI 3.1, for clients and API explorers.
 * Kept next to the routes it describes; a test checks that every documented path is served.
 */
import type { FastifyInstance } from 'fastify';
const json = (description: string, schema: object = { type: 'object' }) => ({
  description,
  content: { 'application/json': { schema } },
});
const error = json('Error', {
  type: 'object',
  required: ['error', 'message'],
  properties: { error: { type: 'string' }, message: { type: 'string' } },
});

/** The path id and range of a history without `per` (requests, nodes). */
const RANGE_PARAMETERS = [
  {
    name: 'id',
    in: 'path',
    required: true,
    schema: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$' },
  },
  { name: 'from', in: 'query', required: false, schema: { type: 'string' } },
  { name: 'to', in: 'query', required: false, schema: { type: 'string' } },
  { name: 'step', in: 'query', required: false, schema: { type: 'string', pattern: '^[0-9]{1,8}(s|m|h|d)?$' } },
] as const;

export const OPENAPI = {
  openapi: '3.1.0',
  info: {
    title: 'swarm-edge',
    version: '0.1.0',
    description:
      'Edge service: Traefik dynamic configuration from Docker Swarm and deployment_routing, and a live container metrics feed.',
  },
  components: {
    securitySchemes: {
      traefikToken: { type: 'http', scheme: 'bearer', description: 'TRAEFIK_HTTP_TOKEN, when set.' },
      feedToken: {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'JWT',
        description:
          'A JWT whose `deployments` claim lists the deployment ids it may watch; also accepted as `?token=`.',
      },
    },
  },
  paths: {
    '/health': {
      get: {
        summary: 'Dependencies and overall status, answered from memory',
        responses: {
          200: json('ok or degraded'),
          503: json('unavailable: a required dependency has never been reached'),
        },
      },
    },
    '/traefik/dynamic': {
      get: {
        summary: "Traefik dynamic configuration for Traefik's HTTP provider (gzip when accepted)",
        security: [{ traefikToken: [] }, {}],
        responses: {
          200: json('The configuration: http.routers, http.services, http.middlewares'),
          401: error,
          503: error,
        },
      },
    },
    '/traefik/routes': {
      get: {
        summary: 'State of every routing row: active, no-replicas, no-service or rejected (with field and reason)',
        security: [{ traefikToken: [] }, {}],
        responses: { 200: json('Counts and one status per row'), 401: error },
      },
    },
    '/__edge/unavailable': {
      get: { summary: 'The 503 answered for deployments with no running replica', responses: { 503: error } },
    },
    '/metrics': {
      get: {
        summary: 'Prometheus metrics',
        responses: {
          200: { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } },
        },
      },
    },
    '/__edge/error/{status}': {
      get: {
        summary:
          "The page Traefik's errors middleware shows for a route with `errors` (deployment_routing.middleware): the status asked for (4xx or 5xx, else 500) with its standard text; nothing of the request is echoed.",
        parameters: [
          { name: 'status', in: 'path', required: true, schema: { type: 'string', pattern: '^[45][0-9]{2}$' } },
        ],
        responses: {
          '4XX': { description: 'HTML', content: { 'text/html': { schema: { type: 'string' } } } },
          '5XX': { description: 'HTML', content: { 'text/html': { schema: { type: 'string' } } } },
        },
      },
    },
    '/metrics/observability': {
      get: {
        summary: "The metrics system's own figures: collection, storage, breakers, feed, live cache",
        responses: { 200: json('Report') },
      },
    },
    '/ws/metrics': {
      get: {
        summary:
          'Websocket feed of container samples and node host samples (upgrade). Protocol: subscribe/unsubscribe by deployment id or node id; snapshot, then live frames. See the README.',
        security: [{ feedToken: [] }],
        parameters: [{ name: 'token', in: 'query', required: false, schema: { type: 'string' } }],
        responses: { 101: { description: 'Switching protocols' } },
      },
    },
    '/api/v1/deployments': {
      get: {
        summary: 'The deployments the token may see, with their containers and nodes now',
        security: [{ feedToken: [] }],
        responses: { 200: json('{ deployments: [...] }'), 401: error, 503: error },
      },
    },
    '/api/v1/deployments/{id}/metrics': {
      get: {
        summary:
          'Stored history on one time axis: minute rows or the hourly rollup, re-bucketed to `step`, at most 2,000 points per series. See the README.',
        security: [{ feedToken: [] }],
        parameters: [
          {
            name: 'id',
            in: 'path',
            required: true,
            schema: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$' },
          },
          {
            name: 'from',
            in: 'query',
            required: false,
            schema: { type: 'string' },
            description: 'ms or ISO 8601; default to - 1 h',
          },
          {
            name: 'to',
            in: 'query',
            required: false,
            schema: { type: 'string' },
            description: 'ms or ISO 8601; default now',
          },
          { name: 'step', in: 'query', required: false, schema: { type: 'string', pattern: '^[0-9]{1,8}(s|m|h|d)?$' } },
          { name: 'per', in: 'query', required: false, schema: { type: 'string', enum: ['deployment', 'container'] } },
        ],
        responses: {
          200: json('{ t: [...], deployment | containers, units, resolution, stepMs }'),
          400: json('{ error: "EDGE_BAD_PARAMETER", parameter, message }'),
          401: error,
          403: error,
          503: error,
        },
      },
    },
    '/api/v1/deployments/{id}/requests': {
      get: {
        summary:
          'Stored request metrics from Traefik (TRAEFIK_METRICS_URLS) on one time axis: requests by status class, bytes, latency quantiles recomputed from the summed buckets, open connections. Same parameters as /metrics, without `per`. See the README.',
        security: [{ feedToken: [] }],
        parameters: RANGE_PARAMETERS,
        responses: {
          200: json(
            '{ t: [...], requests, status, requestBytes, responseBytes, latencyMs, meanLatencyMs, openConnectionsMax }',
          ),
          400: json('{ error: "EDGE_BAD_PARAMETER", parameter, message }'),
          401: error,
          403: error,
          503: error,
        },
      },
    },
    '/api/v1/nodes/{id}/metrics': {
      get: {
        summary:
          "A node's stored minutes (or hourly rollup for steps of whole hours) on one time axis: CPU, load, memory, swap, disk space, disk and network bytes, running containers. Same parameters as the deployment history, without `per`. The token's `nodes` claim must list the node.",
        security: [{ feedToken: [] }],
        parameters: RANGE_PARAMETERS,
        responses: {
          200: json(
            '{ nodeId, t: [...], cpuAvg, cpuMax, load1Avg, load1Max, memoryTotal, memoryUsedAvg, memoryUsedMax, swapUsedMax, diskUsed, diskTotal, diskReadBytes, diskWriteBytes, netRxBytes, netTxBytes, runningContainersMax, runningDeploymentsMax }',
          ),
          400: json('{ error: "EDGE_BAD_PARAMETER", parameter, message }'),
          401: error,
          403: error,
          503: error,
        },
      },
    },
    '/ui': {
      get: {
        summary: 'The dashboard: deployment picker, history and live charts',
        responses: { 200: { description: 'HTML', content: { 'text/html': { schema: { type: 'string' } } } } },
      },
    },
    '/openapi.json': {
      get: { summary: 'This document', responses: { 200: json('OpenAPI 3.1') } },
    },
  },
} as const;

export function registerOpenApiRoute(app: FastifyInstance): void {
  const body = JSON.stringify(OPENAPI);
  app.get('/openapi.json', (_request, reply) =>
    reply.header('content-type', 'application/json; charset=utf-8').send(body),
  );
}
