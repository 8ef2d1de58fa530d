/** A fastify instance of a test, listening on a free loopback port. */
import type { FastifyInstance } from 'fastify';

export interface Listening {
  readonly port: number;
  /** `127.0.0.1:<port>`. */
  readonly address: string;
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
}

export async function listenOnLoopback(app: FastifyInstance): Promise<Listening> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  const bound = app.server.address();
  const port = typeof bound === 'object' && bound ? bound.port : 0;
  return { port, address: `127.0.0.1:${port}`, url: `http://127.0.0.1:${port}` };
}
