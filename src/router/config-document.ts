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
import {
  compare,
  MAP_KEYS,
  SHARED_MIDDLEWARES,
  type ConfigEntry,
  type MapKey,
  type RouteOutput,
} from './route-render.js';

const OPEN = Buffer.from('{\n "http": {\n');
/** The end of the http section; the tcp and udp sections (the tail) follow it, then END. */
const HTTP_CLOSE = Buffer.from('\n }');
const END = Buffer.from('\n}');
const NO_TAIL = Buffer.alloc(0);
const SEPARATOR = Buffer.from(',\n');
const MAP_CLOSE = Buffer.from('\n  }');
const mapOpen = (key: string) => Buffer.from(`  "${key}": {\n`);
const MAP_OPEN = { middlewares: mapOpen('middlewares'), routers: mapOpen('routers'), services: mapOpen('services') };

/**
 * The document of these routes, given in route-name order without duplicate names, and `tail`
 * (the tcp and udp sections, from streamSections) after the http section. Bytes rather than
 * strings: a publish after a small change copies them, with no encoding.
 */
export function assembleDocument(outputs: readonly RouteOutput[], tail: Buffer = NO_TAIL): Buffer {
  return routesSortTogether(outputs) ? assembleByRoute(outputs, tail) : assembleByEntry(outputs, tail);
}

/** Whether, in name order, no route's name is a prefix of the next one's or of a shared middleware's. */
function routesSortTogether(outputs: readonly RouteOutput[]): boolean {
  for (let i = 1; i < outputs.length; i++) if (outputs[i]!.name.startsWith(outputs[i - 1]!.name)) return false;
  return !SHARED_MIDDLEWARES.some((shared) => outputs.some((output) => shared.name.startsWith(output.name)));
}

/**
 * Writes each map as the routes' sections in order, then points every route at its place in the
 * new document. A section is copied from wherever the route's bytes are (the arena, or the last
 * document); see DocumentWriter for how copies merge into runs.
 */
function assembleByRoute(outputs: readonly RouteOutput[], tail: Buffer): Buffer {
  const maps = outputs.length > 0 ? MAP_KEYS : MAP_KEYS.slice(0, 1);
  // The shared middlewares go before the first route whose name sorts after theirs.
  const sharedAt = SHARED_MIDDLEWARES.map((shared) => {
    let at = 0;
    while (at < outputs.length && compare(outputs[at]!.name, shared.name) < 0) at++;
    return at;
  });
  const writer = new DocumentWriter(documentSize(outputs, maps) + tail.length);
  /** New offsets per output, by map, filled in as the sections are laid out. */
  const placed: Record<MapKey, number[]> = { middlewares: [], routers: [], services: [] };

  writer.put(OPEN);
  for (const key of maps) {
    if (key !== 'middlewares') writer.put(SEPARATOR);
    writer.put(MAP_OPEN[key]);
    writer.openMap();
    const offsets = placed[key];
    let shared = 0;
    const putShared = (before: number) => {
      for (; key === 'middlewares' && shared < SHARED_MIDDLEWARES.length && sharedAt[shared] === before; shared++)
        writer.entry(SHARED_MIDDLEWARES[shared]!.bytes);
    };
    for (let i = 0; i < outputs.length; i++) {
      putShared(i);
      const output = outputs[i]!;
      offsets.push(writer.section(output.bytes, output.at(key), output.length(key)));
    }
    putShared(outputs.length);
    writer.put(MAP_CLOSE);
  }
  writer.put(HTTP_CLOSE);
  writer.put(tail);
  writer.put(END);
  const body = writer.finish();
  for (let i = 0; i < outputs.length; i++) {
    outputs[i]!.placeIn(body, placed.middlewares[i] ?? 0, placed.routers[i] ?? 0, placed.services[i] ?? 0);
  }
  return body;
}

/**
 * The exact size of the document but its tail, so that it is written once into its own buffer.
 * Layout: OPEN, the maps (each MAP_OPEN, its non-empty sections joined by SEPARATOR, MAP_CLOSE)
 * joined by SEPARATOR, HTTP_CLOSE, the tail, END; the shared middlewares are sections of the
 * middlewares map.
 */
function documentSize(outputs: readonly RouteOutput[], maps: readonly MapKey[]): number {
  let size = OPEN.length + HTTP_CLOSE.length + END.length + (maps.length - 1) * SEPARATOR.length;
  for (const key of maps) size += MAP_OPEN[key].length + MAP_CLOSE.length;
  let sections = SHARED_MIDDLEWARES.length;
  for (const shared of SHARED_MIDDLEWARES) size += shared.bytes.length;
  let withoutRouter = 0;
  for (const output of outputs) {
    size += output.totalLength;
    sections += output.sectionCount;
    if (!output.has('routers')) withoutRouter += 1;
  }
  // One separator between consecutive sections of a map: one fewer than its sections, per map
  // (the routers map may have none: every route a split's other row, whose first row is away).
  const emptyRouters = maps.includes('routers') && withoutRouter === outputs.length ? 1 : 0;
  return size + (sections - maps.length + emptyRouters) * SEPARATOR.length;
}

/**
 * Writes a document of a known size. Within a map, sections are joined by SEPARATOR; a section
 * that sat right after the previous one in the same source buffer, with the separator between
 * them (the last document, where the routes were in the same order), extends the pending copy
 * instead of starting one: after a small change, each map is a few long copies.
 */
class DocumentWriter {
  private readonly body: Buffer;
  /** Where the next byte goes; bytes before it may still wait in the pending run. */
  private at = 0;
  private firstInMap = true;
  /** The pending copy: source[runStart, runEnd) goes to body[runTarget...]. */
  private runSource: Buffer | undefined;
  private runStart = 0;
  private runEnd = 0;
  private runTarget = 0;

  constructor(private readonly size: number) {
    this.body = Buffer.allocUnsafe(size);
  }

  /** Bytes of the document's frame (openings, closings, separators between maps). */
  put(bytes: Uint8Array): void {
    this.flush();
    this.body.set(bytes, this.at);
    this.at += bytes.length;
  }

  openMap(): void {
    this.firstInMap = true;
  }

  /** A whole entry of its own (a shared middleware), after a separator unless first in its map. */
  entry(bytes: Uint8Array): void {
    if (!this.firstInMap) this.put(SEPARATOR);
    this.put(bytes);
    this.firstInMap = false;
  }

  /** A route's section (skipped when empty); returns where it starts in the document. */
  section(source: Buffer, start: number, length: number): number {
    if (length === 0) return this.at;
    if (!this.firstInMap && this.continuesRun(source, start)) {
      this.runEnd = start + length;
      this.at += SEPARATOR.length + length;
      return this.at - length;
    }
    if (!this.firstInMap) this.put(SEPARATOR);
    this.flush();
    this.runSource = source;
    this.runStart = start;
    this.runEnd = start + length;
    this.runTarget = this.at;
    this.at += length;
    this.firstInMap = false;
    return this.runTarget;
  }

  finish(): Buffer {
    this.flush();
    if (this.at !== this.size) throw new Error(`document size ${this.at}, expected ${this.size}`);
    return this.body;
  }

  /** Whether the section starts right after the pending run in its source, past a separator. */
  private continuesRun(source: Buffer, start: number): boolean {
    const end = this.runEnd;
    return (
      source === this.runSource &&
      start === end + SEPARATOR.length &&
      source[end] === SEPARATOR[0] &&
      source[end + 1] === SEPARATOR[1]
    );
  }

  private flush(): void {
    if (this.runSource !== undefined)
      this.body.set(this.runSource.subarray(this.runStart, this.runEnd), this.runTarget);
    this.runSource = undefined;
  }
}

/**
 * The general case: every entry of every route, each map sorted by entry name. A route's lines
 * are then not together in the document, so the routes' bytes are compacted into a buffer of
 * their own instead: what they pointed into (arena chunks, older documents) is freed, and memory
 * stays bounded however long this path lasts.
 */
function assembleByEntry(outputs: readonly RouteOutput[], tail: Buffer): Buffer {
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
  parts.push(HTTP_CLOSE, tail, END);
  const body = Buffer.concat(parts);
  compact(outputs);
  return body;
}

function compact(outputs: readonly RouteOutput[]): void {
  let size = 0;
  for (const output of outputs) size += output.totalLength;
  const store = Buffer.allocUnsafe(size);
  let at = 0;
  for (const output of outputs) {
    const middlewaresAt = at;
    at += output.section('middlewares').copy(store, at);
    const routersAt = at;
    at += output.section('routers').copy(store, at);
    const servicesAt = at;
    at += output.section('services').copy(store, at);
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
