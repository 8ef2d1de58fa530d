/**
 * The published document: the routes' sections (see RouteOutput), assembled into one UTF-8 JSON
 * document (which is also YAML, for the file provider), each name map in key order.
 *
 * Every entry of a route is named after the route (`name`, `name-http`, `name-compress`, ...).
 * So when no route's name is a prefix of the next one's in name order, the entries of each route
 * sort together, after the previous route's and before the next one's: each map is then the
 * routes' sections in route order, and nothing needs sorting entry by entry. Route names end in
 * 16 hex digits of hash, so a prefix takes a deployment id that embeds another route's name; the
 * general path (assembleByEntry) handles it, and the shared middlewares, by sorting every entry.
 */
import { compare, MAP_KEYS, SHARED_MIDDLEWARES, type ConfigEntry, type MapKey, type RouteOutput } from './route-render.js';

const OPEN = Buffer.from('{\n "http": {\n');
const CLOSE = Buffer.from('\n }\n}');
const SEPARATOR = Buffer.from(',\n');
const MAP_CLOSE = Buffer.from('\n  }');
const mapOpen = (key: string) => Buffer.from(`  "${key}": {\n`);
const MAP_OPEN = { middlewares: mapOpen('middlewares'), routers: mapOpen('routers'), services: mapOpen('services') };

/**
 * The document of these routes, given in route-name order without duplicate names. Bytes rather
 * than strings: a publish after a small change copies them, with no encoding.
 */
export function assembleDocument(outputs: readonly RouteOutput[]): Buffer {
  return routesSortTogether(outputs) ? assembleByRoute(outputs) : assembleByEntry(outputs);
}

/** Whether, in name order, no route's name is a prefix of the next one's or of a shared middleware's. */
function routesSortTogether(outputs: readonly RouteOutput[]): boolean {
  for (let i = 1; i < outputs.length; i++) if (outputs[i]!.name.startsWith(outputs[i - 1]!.name)) return false;
  return !SHARED_MIDDLEWARES.some((shared) => outputs.some((output) => shared.name.startsWith(output.name)));
}

/**
 * Writes each map as the routes' sections in order, then points every route at its place in the
 * new document. A section is copied from wherever the route's bytes are (the arena, or the last
 * document); consecutive sections that were already consecutive there, with the separator
 * between them, are copied as one run: after a small change, each map is a few long copies.
 */
function assembleByRoute(outputs: readonly RouteOutput[]): Buffer {
  const maps = outputs.length > 0 ? MAP_KEYS : MAP_KEYS.slice(0, 1);
  // The shared middlewares go before the first route whose name sorts after theirs.
  const sharedAt = SHARED_MIDDLEWARES.map((shared) => {
    let at = 0;
    while (at < outputs.length && compare(outputs[at]!.name, shared.name) < 0) at++;
    return at;
  });

  // The exact size, so that the document is written once into its own buffer.
  let size = OPEN.length + CLOSE.length + (maps.length - 1) * SEPARATOR.length;
  for (const key of maps) size += MAP_OPEN[key].length + MAP_CLOSE.length;
  /** Non-empty sections: within a map, a separator between consecutive ones. */
  let sections = SHARED_MIDDLEWARES.length;
  for (const shared of SHARED_MIDDLEWARES) size += shared.bytes.length;
  for (const output of outputs) {
    size += output.routersLength + output.servicesLength + output.middlewaresLength;
    sections += output.middlewaresLength > 0 ? 3 : 2;
  }
  size += (sections - maps.length) * SEPARATOR.length;

  const body = Buffer.allocUnsafe(size);
  /** Where the next byte goes; bytes before it may still wait in the pending run. */
  let at = 0;
  let runSource: Buffer | undefined;
  let runStart = 0;
  let runEnd = 0;
  let runTarget = 0;
  const flush = () => {
    if (runSource !== undefined) body.set(runSource.subarray(runStart, runEnd), runTarget);
    runSource = undefined;
  };
  const put = (bytes: Uint8Array) => {
    flush();
    body.set(bytes, at);
    at += bytes.length;
  };
  /** New offsets per output, by map: filled in as the sections are laid out. */
  const placed: Record<MapKey, number[]> = { middlewares: [], routers: [], services: [] };

  put(OPEN);
  for (const key of maps) {
    if (key !== 'middlewares') put(SEPARATOR);
    put(MAP_OPEN[key]);
    const offsets = placed[key];
    let first = true;
    let shared = 0;
    for (let i = 0; i <= outputs.length; i++) {
      if (key === 'middlewares') {
        for (; shared < SHARED_MIDDLEWARES.length && sharedAt[shared] === i; shared++) {
          if (!first) put(SEPARATOR);
          put(SHARED_MIDDLEWARES[shared]!.bytes);
          first = false;
        }
      }
      if (i === outputs.length) break;
      const output = outputs[i]!;
      const length = output.length(key);
      if (length === 0) {
        offsets.push(at);
        continue;
      }
      const start = output.at(key);
      if (!first && output.bytes === runSource && start === runEnd + SEPARATOR.length && runSource[runEnd] === SEPARATOR[0] && runSource[runEnd + 1] === SEPARATOR[1]) {
        // Already right after the previous section, with the separator: the run grows.
        runEnd = start + length;
        offsets.push(at + SEPARATOR.length);
        at += SEPARATOR.length + length;
        continue;
      }
      // put() has flushed the previous run: the separator, or the map's opening, came last.
      if (!first) put(SEPARATOR);
      runSource = output.bytes;
      runStart = start;
      runEnd = start + length;
      runTarget = at;
      offsets.push(at);
      at += length;
      first = false;
    }
    put(MAP_CLOSE);
  }
  put(CLOSE);
  if (at !== size) throw new Error(`document size ${at}, expected ${size}`);
  for (let i = 0; i < outputs.length; i++) {
    outputs[i]!.placeIn(body, placed.middlewares[i] ?? 0, placed.routers[i] ?? 0, placed.services[i] ?? 0);
  }
  return body;
}

/**
 * The general case: every entry of every route, each map sorted by entry name. A route's lines
 * are then not together in the document, so the routes' bytes are compacted into a buffer of
 * their own instead: what they pointed into (arena chunks, older documents) is freed, and memory
 * stays bounded however long this path lasts.
 */
function assembleByEntry(outputs: readonly RouteOutput[]): Buffer {
  const byKey: Record<MapKey, ConfigEntry[]> = { middlewares: [...SHARED_MIDDLEWARES], routers: [], services: [] };
  for (const output of outputs) {
    for (const key of MAP_KEYS) for (const entry of entriesOf(output.section(key))) byKey[key].push(entry);
  }
  const maps = outputs.length > 0 ? MAP_KEYS : MAP_KEYS.slice(0, 1);
  const parts: Buffer[] = [OPEN];
  for (const key of maps) {
    const entries = byKey[key].sort((a, b) => compare(a.name, b.name));
    if (key !== 'middlewares') parts.push(SEPARATOR);
    parts.push(MAP_OPEN[key]);
    for (let i = 0; i < entries.length; i++) {
      if (i > 0) parts.push(SEPARATOR);
      parts.push(entries[i]!.bytes);
    }
    parts.push(MAP_CLOSE);
  }
  parts.push(CLOSE);
  const body = Buffer.concat(parts);
  compact(outputs);
  return body;
}

function compact(outputs: readonly RouteOutput[]): void {
  let size = 0;
  for (const output of outputs) size += output.routersLength + output.servicesLength + output.middlewaresLength;
  const store = Buffer.allocUnsafe(size);
  let at = 0;
  for (const output of outputs) {
    const routersAt = at;
    at += output.section('routers').copy(store, at);
    const servicesAt = at;
    at += output.section('services').copy(store, at);
    const middlewaresAt = at;
    at += output.section('middlewares').copy(store, at);
    output.placeIn(store, middlewaresAt, routersAt, servicesAt);
  }
}

/**
 * The entries of a section, one per line: `   "name": {...}`, lines joined by ",\n". JSON text
 * holds no raw newline, so each "\n" ends a line; the name is the JSON string that starts it.
 */
function entriesOf(bytes: Buffer): ConfigEntry[] {
  const entries: ConfigEntry[] = [];
  let start = 0;
  while (start < bytes.length) {
    const newline = bytes.indexOf(0x0a, start);
    const end = newline === -1 ? bytes.length : newline - 1; // without the "," before "\n"
    const line = bytes.subarray(start, end);
    const text = line.toString();
    let close = 4;
    while (text[close] !== '"') close += text[close] === '\\' ? 2 : 1;
    entries.push({ name: JSON.parse(text.slice(3, close + 1)) as string, bytes: line });
    start = newline === -1 ? bytes.length : newline + 1;
  }
  return entries;
}
