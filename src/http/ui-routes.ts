import type { FastifyInstance } from 'fastify';
import { UI_PAGE } from './ui-page.js';

/** GET /ui (and / as a pointer to it): the built-in live page over the websocket feed. */
export function registerUiRoutes(app: FastifyInstance): void {
  const page = Buffer.from(UI_PAGE);
  app.get('/ui', (_request, reply) =>
    reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-cache')
      .header(
        'content-security-policy',
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
      )
      .send(page),
  );
  app.get('/', (_request, reply) => reply.redirect('/ui'));
}
