/**
 * A child process for bench/traffic.ts: serves Traefik's exposition for N services (4 codes × 2
 * methods, 12 buckets, as Traefik writes it) on loopback, rotating through a few pre-rendered
 * versions whose counters grow, so the scraper's process pays only for scraping. Prints its URL.
 *
 *   tsx bench/traefik-stand-in.ts <services>
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TraefikExposition } from '../test/harness/index.js';

const services = Number(process.argv[2] ?? 1000);
const exposition = new TraefikExposition();
const CODES = [200, 304, 404, 503];
const METHODS = ['GET', 'POST'];
const name = (i: number) =>
  `deployment-${String(i).padStart(5, '0')}-${((i * 2654435761) >>> 0).toString(16).padStart(8, '0')}@file`;

const versions: Buffer[] = [];
for (let v = 0; v < 3; v++) {
  for (let i = 0; i < services; i++)
    for (const code of CODES)
      for (const method of METHODS)
        exposition.observe({ service: name(i), code, method, seconds: ((i + v) % 97) / 40 }, 1 + ((i * 7 + v) % 13));
  versions.push(Buffer.from(exposition.text()));
}
let next = 0;
const server = createServer((_request, response) => {
  const body = versions[next++ % versions.length]!;
  response.writeHead(200, {
    'content-type': 'text/plain; version=0.0.4; charset=utf-8',
    'content-length': body.length,
  });
  response.end(body);
});
// A 180 MB answer to a slow reader must not be cut by the server's own timeouts.
server.keepAliveTimeout = 120_000;
server.requestTimeout = 0;
server.headersTimeout = 0;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(
    `${JSON.stringify({ url: `http://127.0.0.1:${port}/metrics`, bytes: versions[0]!.length, lines: versions[0]!.toString().split('\n').length })}\n`,
  );
});
