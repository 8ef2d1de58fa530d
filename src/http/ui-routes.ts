/**
 * GET /ui: the deployment dashboard (src/ui), and the charting library it draws with (uPlot, from
 * this package's dependencies: no CDN). Files are read once at start and served from memory; the
 * page's own script and styles are files too, so the policy allows scripts from this origin only.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { FastifyInstance } from 'fastify';

const POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

interface Asset {
  readonly body: Buffer;
  readonly type: string;
}

function loadAssets(): { page: Buffer; assets: Map<string, Asset> } {
  // src/ui when run from source, dist/ui when built (the build copies it).
  const ui = new URL('../ui/', import.meta.url);
  const uplot = createRequire(import.meta.url).resolve('uplot/dist/uPlot.iife.min.js');
  const assets = new Map<string, Asset>([
    ['dashboard.js', { body: readFileSync(new URL('dashboard.js', ui)), type: 'text/javascript; charset=utf-8' }],
    ['dashboard.css', { body: readFileSync(new URL('dashboard.css', ui)), type: 'text/css; charset=utf-8' }],
    ['uPlot.iife.min.js', { body: readFileSync(uplot), type: 'text/javascript; charset=utf-8' }],
    [
      'uPlot.min.css',
      { body: readFileSync(uplot.replace(/uPlot\.iife\.min\.js$/, 'uPlot.min.css')), type: 'text/css; charset=utf-8' },
    ],
  ]);
  return { page: readFileSync(new URL('index.html', ui)), assets };
}

export function registerUiRoutes(app: FastifyInstance): void {
  const { page, assets } = loadAssets();
  app.get('/ui', (_request, reply) =>
    reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-cache')
      .header('content-security-policy', POLICY)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .send(page),
  );
  app.get<{ Params: { name: string } }>('/ui/assets/:name', (request, reply) => {
    // A fixed map: no path from the request ever reaches the file system.
    const asset = assets.get(request.params.name);
    if (!asset)
      return reply
        .status(404)
        .send({ error: 'EDGE_NOT_FOUND', message: `no asset ${request.params.name.slice(0, 64)}` });
    return reply
      .header('content-type', asset.type)
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .send(asset.body);
  });
  app.get('/', (_request, reply) => reply.redirect('/ui'));
}
