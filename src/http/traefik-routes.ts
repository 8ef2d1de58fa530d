/**
 * Traefik's HTTP provider endpoint and the route status listing. /traefik/dynamic answers 200
 * with the cached body every time (Traefik treats anything else, 304 included, as an error), and
 * 503 only before the first publish, when Traefik keeps whatever it had.
 *
 * Access: with TRAEFIK_HTTP_TOKEN set, both need `Authorization: Bearer <token>` (compared as
 * SHA-256 digests, so neither the token nor its length leaks through timing). Without it,
 * /traefik/dynamic stays open (Traefik must reach it; keep it on an internal network) but
 * /traefik/routes, which lists every tenant's rows and why they were rejected, answers only
 * loopback clients: operators on the node itself.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { PublishedState } from '../router/index.js';
import { ERROR_PAGE_PATH, UNAVAILABLE_PATH } from '../router/index.js';
import { STATUS_CODES } from 'node:http';
import { Errors } from './errors.js';

const gzipAsync = promisify(gzip);

export function registerTraefikRoutes(
  app: FastifyInstance,
  deps: { state: () => PublishedState; token: string | undefined },
): void {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  const expected = deps.token === undefined ? undefined : digest(`Bearer ${deps.token}`);
  const authorize = (request: FastifyRequest) => {
    if (!expected) return;
    if (!timingSafeEqual(digest(request.headers.authorization ?? ''), expected)) throw new Errors.Unauthorized();
  };
  const authorizeListing = (request: FastifyRequest) => {
    if (expected) return authorize(request);
    if (!isLoopback(request.socket.remoteAddress)) {
      throw new Errors.Forbidden(
        'the route listing names every tenant: set TRAEFIK_HTTP_TOKEN to read it remotely (without it, only loopback clients may)',
      );
    }
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
    reply
      .header('content-type', 'application/json; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('vary', 'accept-encoding');
    if (body.length >= 1024 && /\bgzip\b/.test(request.headers['accept-encoding'] ?? '')) {
      const compressed = await gzipOf(body);
      if (compressed) return reply.header('content-encoding', 'gzip').send(compressed);
    }
    return reply.send(body);
  });

  app.get('/traefik/routes', (request, reply) => {
    authorizeListing(request);
    const { statuses, counts, publishedAt, waitingFor, stale } = deps.state();
    return reply.send({
      publishedAt: publishedAt === undefined ? null : new Date(publishedAt).toISOString(),
      waitingFor: waitingFor ?? null,
      stale,
      counts,
      routes: statuses,
    });
  });

  void app.register(unavailableRoute);
  registerErrorPages(app);
}

/**
 * Where Traefik sends the requests of a deployment with no running replica: 503 with Retry-After
 * whatever the method, content type or size of the body. In its own context, with one parser that
 * drains and ignores any body, so fastify's parsers (415, 413, 400) never answer first.
 */
function unavailableRoute(app: FastifyInstance, _options: unknown, done: () => void): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => {
    payload.resume();
    done(null, undefined);
  });
  const answer = (reply: FastifyReply) =>
    reply.status(503).header('retry-after', '5').header('cache-control', 'no-store').send({
      error: 'EDGE_NO_REPLICA',
      message: 'This deployment has no running replica right now. Try again shortly.',
    });
  app.setErrorHandler((_error, _request, reply) => answer(reply));
  app.all(UNAVAILABLE_PATH, async (_request, reply) => answer(reply));
  done();
}

function isLoopback(address: string | undefined): boolean {
  return (
    address !== undefined && (address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.'))
  );
}

/**
 * The pages of routes with the `errors` middleware: Traefik asks `/__edge/error/<status>` of this
 * service when an upstream answers a status the route lists, and sends this page with the original
 * status. Nothing of the request is echoed: the page is the status code and its standard text.
 */
function registerErrorPages(app: FastifyInstance): void {
  app.get<{ Params: { status: string } }>(`${ERROR_PAGE_PATH}:status`, async (request, reply) => {
    const raw = request.params.status;
    const status = /^[45][0-9]{2}$/.test(raw) ? Number(raw) : 500;
    const text = STATUS_CODES[status] ?? (status >= 500 ? 'Server Error' : 'Client Error');
    const detail =
      status >= 500
        ? 'The application behind this address could not answer. It has been told; please try again in a moment.'
        : 'The application behind this address could not serve this request.';
    return reply
      .status(status)
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(errorPage(status, text, detail));
  });
}

function errorPage(status: number, text: string, detail: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${status} ${text}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;margin:0;display:grid;place-items:center;min-height:100vh;background:#f6f7f9;color:#1f2328}main{max-width:32rem;padding:2rem}h1{font-size:3rem;margin:0}p{color:#57606a}</style>
</head><body><main><h1>${status}</h1><p><strong>${text}</strong></p><p>${detail}</p></main></body></html>
`;
}
