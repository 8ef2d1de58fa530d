/**
 * GET /ws/metrics: the websocket feed (protocol in feed/protocol.ts and the README). The token
 * comes from `?token=` (browsers cannot set headers on a websocket) or `Authorization: Bearer`.
 * A refused token still completes the handshake, so that browser clients can read why: an error
 * frame, then close code 4001.
 */
import websocket from '@fastify/websocket';
import type { FastifyInstance } from 'fastify';
import { FeedAuthError, type FeedAuthenticator } from '../feed/feed-auth.js';
import type { MetricsFeed } from '../feed/metrics-feed.js';
import { CLOSE, MAX_PAYLOAD_BYTES } from '../feed/protocol.js';

export async function registerFeedRoutes(
  app: FastifyInstance,
  deps: { feed: MetricsFeed; authenticate: FeedAuthenticator },
): Promise<void> {
  await app.register(websocket, {
    options: { maxPayload: MAX_PAYLOAD_BYTES },
    // Anyone can send an oversized frame (ws closes with 1009, then emits the error) or reset a
    // connection: a counter and a debug line, never an error-level log with a stack that any
    // client can flood (the plugin's default handler logs each at error).
    errorHandler: (error, socket, request) => {
      deps.feed.socketError();
      request.log.debug({ err: error }, 'feed socket error');
      if (socket.readyState === socket.OPEN) socket.terminate();
    },
  });
  app.route<{ Querystring: { token?: string } }>({
    method: 'GET',
    url: '/ws/metrics',
    // A plain GET (no Upgrade header) gets told what this is instead of a bare 404.
    handler: (_request, reply) =>
      reply.status(426).header('upgrade', 'websocket').send({
        error: 'EDGE_UPGRADE_REQUIRED',
        message: 'this is a websocket endpoint: connect with Upgrade: websocket',
      }),
    wsHandler: async (socket, request) => {
      const header = request.headers.authorization;
      const token =
        typeof request.query.token === 'string'
          ? request.query.token
          : header?.startsWith('Bearer ')
            ? header.slice(7)
            : undefined;
      // Frames sent before the grant is known must not be lost: buffer them until accept().
      // Each keeps its binary flag: a binary frame is refused as such even when it came early.
      const early: Array<[Buffer, boolean]> = [];
      const hold = (data: Buffer, isBinary: boolean) => early.push([data, isBinary]);
      socket.on('message', hold);
      try {
        const grant = await deps.authenticate(token);
        socket.off('message', hold);
        // A client that left while its token was verified is not subscribed to anything.
        if (!deps.feed.accept(socket, grant)) return;
        for (const [data, isBinary] of early) socket.emit('message', data, isBinary);
      } catch (error) {
        socket.off('message', hold);
        deps.feed.authFailed();
        const message = error instanceof FeedAuthError ? error.message : 'authentication failed';
        if (!(error instanceof FeedAuthError)) request.log.warn({ err: error }, 'feed authentication error');
        if (socket.readyState !== socket.OPEN) return;
        socket.send(JSON.stringify({ type: 'error', code: 'unauthorized', message }));
        socket.close(CLOSE.unauthorized, 'unauthorized');
      }
    },
  });
}
