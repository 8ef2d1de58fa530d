import { describe, expect, it } from 'vitest';
import { ByteArena } from './byte-arena.js';
import { assembleDocument } from './config-document.js';
import { MAP_KEYS, q, RouteOutput, SHARED_MIDDLEWARES, type MapKey } from './route-render.js';

/** A rendered route: a router, a service, and middlewares when asked, in the arena. */
function output(name: string, arena: ByteArena, middlewares: string[] = []): RouteOutput {
  const line = (entry: string, value: string) => `   ${q(entry)}: ${value}`;
  const m = middlewares.map((type) => line(`${name}-${type}`, `{"${type}": {}}`)).join(',\n');
  const r = line(name, `{"rule": ${q(`Host(\`${name}.test\`)`)}, "service": ${q(name)}}`);
  const s = line(name, `{"loadBalancer": {"servers": [{"url": "http://127.0.0.1:1"}]}}`);
  const { bytes, start } = arena.write(m + r + s);
  const out = new RouteOutput(name);
  out.rendered(bytes, start, Buffer.byteLength(m), Buffer.byteLength(r), Buffer.byteLength(s));
  return out;
}

type Doc = { http: Record<MapKey, Record<string, unknown>> };
const parse = (body: Buffer) => JSON.parse(body.toString()) as Doc;
const sections = (outputs: readonly RouteOutput[]) =>
  outputs.map((o) => MAP_KEYS.map((key) => o.section(key).toString()));

describe('assembleDocument', () => {
  it('lays out each map in name order with the shared middlewares, and points every route at its sections', () => {
    const arena = new ByteArena();
    const outputs = [
      output('a-1', arena, ['compress']),
      output('m-2', arena),
      output('z-3', arena, ['headers', 'ratelimit']),
    ];
    const before = sections(outputs);
    const body = assembleDocument(outputs);
    const doc = parse(body);
    expect(Object.keys(doc.http)).toEqual(['middlewares', 'routers', 'services']);
    expect(Object.keys(doc.http.middlewares)).toEqual([
      'a-1-compress',
      ...SHARED_MIDDLEWARES.map((s) => s.name),
      'z-3-headers',
      'z-3-ratelimit',
    ]);
    expect(Object.keys(doc.http.routers)).toEqual(['a-1', 'm-2', 'z-3']);
    expect(Object.keys(doc.http.services)).toEqual(['a-1', 'm-2', 'z-3']);
    // The routes now live in the document, at offsets that hold the same bytes.
    expect(outputs.every((o) => o.bytes === body)).toBe(true);
    expect(sections(outputs)).toEqual(before);
  });

  it('copies an unchanged document from the last one to the same bytes, and a changed route lands in order', () => {
    const arena = new ByteArena();
    const outputs = [output('a-1', arena), output('b-2', arena, ['compress']), output('c-3', arena)];
    const first = assembleDocument(outputs);
    const again = assembleDocument(outputs);
    expect(again.equals(first)).toBe(true);
    expect(again).not.toBe(first);
    outputs[1] = output('b-2', new ByteArena(), ['headers']);
    const changed = assembleDocument(outputs);
    const fresh = assembleDocument([output('a-1', arena), output('b-2', arena, ['headers']), output('c-3', arena)]);
    expect(changed.equals(fresh)).toBe(true);
  });

  it('sorts entry by entry when a route name is a prefix of the next, and compacts the routes into their own buffer', () => {
    const arena = new ByteArena();
    const outputs = [output('app', arena, ['compress']), output('app-http', arena), output('b', arena)];
    const before = sections(outputs);
    const body = assembleDocument(outputs);
    const doc = parse(body);
    expect(Object.keys(doc.http.routers)).toEqual(['app', 'app-http', 'b']);
    expect(Object.keys(doc.http.middlewares)).toEqual(
      ['app-compress', ...SHARED_MIDDLEWARES.map((s) => s.name)].sort(),
    );
    expect(outputs.every((o) => o.bytes !== body)).toBe(true);
    expect(sections(outputs)).toEqual(before);
  });

  it('writes only the shared middlewares when there is no route (no empty maps: Traefik refuses them)', () => {
    const doc = parse(assembleDocument([]));
    expect(Object.keys(doc.http)).toEqual(['middlewares']);
    expect(Object.keys(doc.http.middlewares)).toEqual(SHARED_MIDDLEWARES.map((s) => s.name));
  });
});
