/**
 * The counters of one Traefik, per Traefik service, read from its Prometheus exposition, and what
 * each scrape added to them.
 *
 * Parsing: the exposition is read as it streams in, line by line. A scrape repeats the series of
 * the one before with new values, so each series line's text up to its value (`name{labels}`) is
 * looked up in a cache, and only a line never seen before is parsed, by parse-prometheus-text-format,
 * and validated. The hot path is then a line split, one map lookup and one number parse per line
 * (bench/traffic.ts: against parsing every line with the library, and against a regex per line).
 * The cache holds what a line *means* (family, service, status class, bucket bound), never a
 * value, so a stale entry cannot change a figure; it is swept of series not seen for a while.
 *
 * Deltas: a service's vector (figures.ts) is summed over its series at each scrape and compared
 * with the previous scrape. A service whose counters went down was reset (Traefik restarted, or
 * dropped and re-created the service's series: it removes the series of services gone from its
 * configuration), so its whole current value is new; a service seen for the first time since the
 * target's baseline started from zero too. A restart is also recognised by
 * `process_start_time_seconds` changing, which catches a Traefik that restarted and counted past
 * its old values between two scrapes. The first scrape of a target only sets the baseline.
 *
 * A scrape that fails validation anywhere changes nothing: counters make a skipped scrape
 * harmless, since the next good one covers the gap.
 */
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { relayout, SLOT, statusSlot, vectorLength } from './figures.js';

export const FAMILY = {
  requests: 'traefik_service_requests_total',
  duration: 'traefik_service_request_duration_seconds',
  requestBytes: 'traefik_service_requests_bytes_total',
  responseBytes: 'traefik_service_responses_bytes_total',
  openConnections: 'traefik_service_open_connections',
  startTime: 'process_start_time_seconds',
} as const;

const SERVICE_PREFIX = 'traefik_service_';
/** A Traefik service label: `name@provider`, as Traefik writes it. Longer values are refused. */
const MAX_SERVICE_LENGTH = 512;
/** More distinct services than this in one exposition is refused (each holds a vector). */
export const MAX_SERVICES = 200_000;
/** More distinct bucket bounds than this is refused. */
const MAX_BUCKETS = 64;
/** Lines cached at most; beyond it the cache is cleared and refilled (a misbehaving target). */
const MAX_CACHED_LINES = 4_000_000;
/** A series not seen for this many scrapes leaves the cache. */
const SWEEP_AFTER_SCRAPES = 12;

/** What a series line means: where its value goes. */
type LineMeaning =
  | { readonly kind: 'ignored' }
  | { readonly kind: 'start' }
  | { readonly kind: 'slot'; readonly entry: ServiceEntry; readonly slot: number }
  | { readonly kind: 'bucket'; readonly entry: ServiceEntry; readonly le: number; index: number; layout: number };

interface CachedLine {
  readonly key: string;
  readonly meaning: LineMeaning;
  seen: number;
  /** Its index in `order`, the previous scrape's sequence of wanted lines. */
  position: number;
}

/** One Traefik service's vectors: `current` is filled by a scrape, `previous` by the last good one. */
export class ServiceEntry {
  current: Float64Array;
  previous: Float64Array | undefined;
  /** The scrape that last touched `current` (its vector is zeroed on a scrape's first touch). */
  touched = -1;
  /** The scrape that last held this service. */
  lastSeen = -1;
  constructor(
    readonly service: string,
    length: number,
  ) {
    this.current = new Float64Array(length);
  }
}

export interface ServiceDelta {
  readonly service: string;
  /** Added since the previous scrape; the gauge slot holds its current value. */
  readonly delta: Float64Array;
}

export type ScrapeOutcome =
  | { readonly ok: true; readonly baseline: boolean; readonly deltas: readonly ServiceDelta[]; readonly reset: boolean }
  | { readonly ok: false; readonly reason: string };

export class ExpositionError extends Error {}

/** The state a checkpoint carries: the counters of every service at one scrape. */
export interface CounterSnapshot {
  readonly startTime: number | undefined;
  readonly bounds: readonly number[];
  readonly services: ReadonlyMap<string, Float64Array>;
}

export class ServiceCounters {
  private readonly lines = new Map<string, CachedLine>();
  /**
   * The wanted lines of the last scrape, in the order they came. Traefik writes its series in the
   * same order every time, so a line is first compared with the one expected at the cursor (a
   * slice, which V8 makes without copying, and `===`: no hash; `startsWith` at an offset was 8×
   * slower), and only a line that is not the
   * expected one is cut out and looked up in `lines`; the cursor then resumes after it. A
   * comparison can only find the very key cached, so an order that changes costs speed, never
   * correctness. While every line is in place, this scrape's order is `order` itself (nothing is
   * pushed): `nextOrder` is built only from the first line out of place. bench/traffic.ts: a
   * quarter of the CPU of a map lookup per line, and not building the order saved another third.
   */
  private order: CachedLine[] = [];
  /** This scrape's order, built only once a line is out of place (until then it is `order` itself). */
  private nextOrder: CachedLine[] | undefined;
  private cursor = 0;
  private readonly services = new Map<string, ServiceEntry>();
  /** Bucket bounds of this target, ascending, and their slot index. */
  private bounds: number[] = [];
  private boundIndex = new Map<number, number>();
  /** Bumped whenever `bounds` changes: bucket lines cache their slot for one layout. */
  private layout = 0;
  private scrape = 0;
  private committed = -1;
  private startTime: number | undefined;
  private pendingStartTime: number | undefined;
  private touchedEntries: ServiceEntry[] = [];
  private partial = '';
  private failure: string | undefined;
  private layoutChanged = false;
  /** Whether the previous good scrape exists: the first one is the baseline. */
  private hasBaseline = false;
  private s = { linesParsed: 0, cacheSweeps: 0 };

  stats() {
    return { cachedLines: this.lines.size, services: this.services.size, bucketBounds: this.bounds.length, ...this.s };
  }

  /** Starts reading a scrape. */
  begin(): void {
    this.scrape += 1;
    this.partial = '';
    this.failure = undefined;
    this.touchedEntries = [];
    this.pendingStartTime = undefined;
    this.layoutChanged = false;
    this.cursor = 0;
    this.nextOrder = undefined;
  }

  /**
   * A piece of the exposition, cut anywhere. Lines are read in place in `chunk`: only a line cut
   * between two chunks is joined, since a joined (cons) string makes every later comparison in
   * it slow (V8 compares flat strings only: bench/traffic.ts measured 3× the CPU).
   */
  write(chunk: string): void {
    if (this.failure !== undefined) return;
    let start = 0;
    if (this.partial !== '') {
      const newline = chunk.indexOf('\n');
      if (newline === -1) {
        this.partial += chunk;
        return;
      }
      const joined = this.partial + chunk.slice(0, newline);
      this.partial = '';
      this.line(joined, 0, joined.length);
      if (this.failure !== undefined) return;
      start = newline + 1;
    }
    for (;;) {
      const end = chunk.indexOf('\n', start);
      if (end === -1) break;
      this.line(chunk, start, end);
      if (this.failure !== undefined) return;
      start = end + 1;
    }
    if (start < chunk.length) this.partial = chunk.slice(start);
  }

  /** Ends the scrape: commits its counters and returns what it added, or why it was refused. */
  finish(): ScrapeOutcome {
    if (this.partial !== '' && this.failure === undefined) {
      const rest = this.partial;
      this.partial = '';
      this.line(rest, 0, rest.length);
    }
    if (this.failure !== undefined) return { ok: false, reason: this.failure };
    return this.commit();
  }

  /** The bucket bounds the vectors of the last scrape are laid out for. */
  snapshotBounds(): readonly number[] {
    return this.bounds;
  }

  /** The counters at the last good scrape, for a checkpoint. */
  snapshot(): CounterSnapshot {
    // Copies: the vectors are reused by later scrapes.
    const services = new Map<string, Float64Array>();
    for (const entry of this.services.values())
      if (entry.lastSeen === this.committed && entry.previous)
        services.set(entry.service, Float64Array.from(entry.previous));
    return { startTime: this.startTime, bounds: [...this.bounds], services };
  }

  /**
   * Continues from a checkpoint (another instance's, or this one's before a restart): the next
   * scrape's deltas are measured from it. Any state of this target is replaced.
   */
  restore(snapshot: CounterSnapshot): void {
    this.lines.clear();
    this.order = [];
    this.services.clear();
    this.setBounds([...snapshot.bounds]);
    this.startTime = snapshot.startTime;
    this.scrape += 1;
    this.committed = this.scrape;
    for (const [service, vector] of snapshot.services) {
      if (vector.length !== vectorLength(this.bounds.length)) continue;
      const entry = new ServiceEntry(service, vector.length);
      entry.previous = Float64Array.from(vector);
      entry.lastSeen = this.scrape;
      this.services.set(service, entry);
    }
    this.hasBaseline = true;
  }

  /**
   * The deltas from the counters held now to `latest` (a snapshot taken of this target before a
   * restore), committed as if `latest` had been scraped: how a handover re-measures what this
   * instance counted since another instance's checkpoint.
   */
  replay(latest: CounterSnapshot): ScrapeOutcome {
    this.begin();
    for (const le of latest.bounds) if (!this.boundIndex.has(le)) this.addBound(le);
    for (const [service, vector] of latest.services) {
      let entry = this.services.get(service);
      if (!entry) this.services.set(service, (entry = new ServiceEntry(service, vectorLength(this.bounds.length))));
      entry.touched = this.scrape;
      entry.current = Float64Array.from(relayout(vector, latest.bounds, this.bounds));
      this.touchedEntries.push(entry);
    }
    this.pendingStartTime = latest.startTime;
    return this.commit();
  }

  /** Forgets the baseline: the next scrape is a baseline again. */
  forget(): void {
    this.lines.clear();
    this.order = [];
    this.services.clear();
    this.hasBaseline = false;
    this.startTime = undefined;
  }

  private fail(reason: string): void {
    this.failure ??= reason;
  }

  private line(text: string, start: number, end: number): void {
    if (end > start && text.charCodeAt(end - 1) === 0x0d) end -= 1;
    let cached = this.order[this.cursor];
    let keyEnd = cached ? start + cached.key.length : 0;
    const separator = keyEnd < end ? text.charCodeAt(keyEnd) : 0;
    if (cached && (separator === 0x20 || separator === 0x09) && text.slice(start, keyEnd) === cached.key) {
      this.cursor += 1;
      this.nextOrder?.push(cached);
    } else {
      // Lines of other families (and comments) are skipped on their first characters alone.
      const first = text.charCodeAt(start);
      if (first === 0x74 /* t */) {
        if (text.slice(start, start + SERVICE_PREFIX.length) !== SERVICE_PREFIX) return;
      } else if (first === 0x70 /* p */) {
        if (text.slice(start, start + FAMILY.startTime.length) !== FAMILY.startTime) return;
      } else return;
      // The series ends at the label set's closing brace: a value and a timestamp hold none, while
      // a label value may hold spaces. Without labels it ends at the first space.
      keyEnd = text.lastIndexOf('}', end - 1);
      if (keyEnd < start) {
        keyEnd = text.indexOf(' ', start);
        if (keyEnd === -1 || keyEnd >= end) return this.fail(`a line without a value: ${preview(text, start, end)}`);
      } else keyEnd += 1;
      const key = text.slice(start, keyEnd);
      cached = this.lines.get(key);
      if (cached === undefined) {
        cached = { key, meaning: this.understand(key, text, start, end), seen: this.scrape, position: -1 };
        if (this.failure !== undefined) return;
        if (this.lines.size >= MAX_CACHED_LINES) this.lines.clear();
        this.lines.set(key, cached);
      }
      // Out of place: from here on this scrape's order is built line by line.
      this.nextOrder ??= this.order.slice(0, this.cursor);
      this.nextOrder.push(cached);
      if (this.order[cached.position] === cached) this.cursor = cached.position + 1;
    }
    const meaning = cached.meaning;
    if (meaning.kind === 'ignored') return;
    const value = parseValue(text, keyEnd, end);
    if (value === undefined) return this.fail(`a value that is not a number: ${preview(text, start, end)}`);
    if (meaning.kind === 'start') {
      this.pendingStartTime = value;
      return;
    }
    if (!(value >= 0) || value === Infinity)
      return this.fail(`a negative or infinite counter: ${preview(text, start, end)}`);
    const entry = meaning.entry;
    if (entry.touched !== this.scrape) {
      entry.touched = this.scrape;
      if (entry.current.length !== vectorLength(this.bounds.length))
        entry.current = new Float64Array(vectorLength(this.bounds.length));
      else entry.current.fill(0);
      this.touchedEntries.push(entry);
    }
    if (meaning.kind === 'slot') entry.current[meaning.slot]! += value;
    else {
      // The bound's slot, looked up again only when the layout changed since it was cached.
      if (meaning.layout !== this.layout) {
        const index = this.boundIndex.get(meaning.le);
        if (index === undefined) return this.fail('bucket layout changed within a scrape');
        meaning.index = index;
        meaning.layout = this.layout;
      }
      entry.current[SLOT.buckets + meaning.index]! += value;
    }
  }

  /** Parses and validates a series seen for the first time (the library does the parsing). */
  private understand(key: string, text: string, start: number, end: number): LineMeaning {
    let parsed: { name: string; labels: Record<string, string> };
    try {
      // The library flushes a family at the next line: a lone line needs its newline.
      const families = parsePrometheusTextFormat(`${text.slice(start, end)}\n`);
      const metric = families[0]?.metrics[0];
      if (families.length !== 1 || !metric) throw new ExpositionError('not one sample');
      parsed = { name: families[0]!.name, labels: metric.labels ?? {} };
    } catch {
      this.fail(`a line that does not parse: ${preview(text, start, end)}`);
      return { kind: 'ignored' };
    }
    this.s.linesParsed += 1;
    if (parsed.name !== key.slice(0, parsed.name.length)) {
      this.fail(`a line that does not parse: ${preview(text, start, end)}`);
      return { kind: 'ignored' };
    }
    const name = parsed.name;
    if (name === FAMILY.startTime) return { kind: 'start' };
    const label = (label: string): string | undefined =>
      Object.hasOwn(parsed.labels, label) ? parsed.labels[label] : undefined;
    let slot: number | undefined;
    let le: number | undefined;
    if (name === FAMILY.requests || name === FAMILY.requestBytes || name === FAMILY.responseBytes) {
      const code = label('code');
      if (code === undefined || !/^\d{1,3}$/.test(code)) {
        this.fail(`a ${name} series without a status code: ${preview(text, start, end)}`);
        return { kind: 'ignored' };
      }
      slot =
        name === FAMILY.requests
          ? SLOT.status + statusSlot(Number(code))
          : name === FAMILY.requestBytes
            ? SLOT.requestBytes
            : SLOT.responseBytes;
    } else if (name === `${FAMILY.duration}_sum`) slot = SLOT.durationSum;
    else if (name === `${FAMILY.duration}_count`) slot = SLOT.durationCount;
    else if (name === FAMILY.openConnections) slot = SLOT.openConnections;
    else if (name === `${FAMILY.duration}_bucket`) {
      const bound = label('le');
      le = bound === '+Inf' ? Infinity : bound !== undefined && bound.trim() !== '' ? Number(bound) : NaN;
      if (!(le >= 0)) {
        this.fail(`a bucket without a valid le: ${preview(text, start, end)}`);
        return { kind: 'ignored' };
      }
    } else return { kind: 'ignored' }; // other service families: retries, server_up, tls

    const service = label('service');
    // The library keeps the last of repeated labels; a series that names two services is refused.
    if (key.split('service="').length > 2) {
      this.fail(`a series with two service labels: ${preview(text, start, end)}`);
      return { kind: 'ignored' };
    }
    if (service === undefined || service === '' || service.length > MAX_SERVICE_LENGTH) {
      this.fail(`a series without a usable service label: ${preview(text, start, end)}`);
      return { kind: 'ignored' };
    }
    let entry = this.services.get(service);
    if (!entry) {
      if (this.services.size >= MAX_SERVICES) {
        this.fail(`more than ${MAX_SERVICES} services`);
        return { kind: 'ignored' };
      }
      entry = new ServiceEntry(service, vectorLength(this.bounds.length));
      this.services.set(service, entry);
    }
    if (le !== undefined) {
      if (!this.boundIndex.has(le)) {
        if (this.bounds.length >= MAX_BUCKETS) {
          this.fail(`more than ${MAX_BUCKETS} bucket bounds`);
          return { kind: 'ignored' };
        }
        this.addBound(le);
      }
      return { kind: 'bucket', entry, le, index: -1, layout: -1 };
    }
    return { kind: 'slot', entry, slot: slot! };
  }

  /** A new bucket bound: the layout grows, and vectors filled so far this scrape are re-laid. */
  private addBound(le: number): void {
    const old = this.bounds;
    this.setBounds([...old, le].sort((a, b) => a - b));
    this.layoutChanged = true;
    for (const entry of this.touchedEntries) entry.current = relayout(entry.current, old, this.bounds);
  }

  private setBounds(bounds: number[]): void {
    this.layout += 1;
    this.bounds = bounds;
    this.boundIndex = new Map(bounds.map((le, i) => [le, i]));
  }

  private commit(): ScrapeOutcome {
    const length = vectorLength(this.bounds.length);
    const restarted =
      this.startTime !== undefined && this.pendingStartTime !== undefined && this.pendingStartTime !== this.startTime;
    // A layout change means Traefik's static configuration changed, which takes a restart.
    const reset = restarted || this.layoutChanged;
    const baseline = !this.hasBaseline;
    const deltas: ServiceDelta[] = [];
    for (const entry of this.touchedEntries) {
      const current = entry.current;
      const previous =
        entry.lastSeen === this.committed && entry.previous?.length === length && !reset ? entry.previous : undefined;
      const delta = new Float64Array(length);
      let wentDown = false;
      if (previous) {
        for (let i = 0; i < length; i++) {
          if (i === SLOT.openConnections) continue;
          const d = current[i]! - previous[i]!;
          if (d < 0) {
            wentDown = true;
            break;
          }
          delta[i] = d;
        }
      }
      if (!previous || wentDown) delta.set(current);
      delta[SLOT.openConnections] = current[SLOT.openConnections]!;
      if (!baseline) deltas.push({ service: entry.service, delta });
      // The vectors swap: the next scrape fills the old previous.
      entry.current = entry.previous?.length === length ? entry.previous : new Float64Array(length);
      entry.previous = current;
      entry.lastSeen = this.scrape;
    }
    this.committed = this.scrape;
    if (this.nextOrder) {
      this.order = this.nextOrder;
      for (let i = 0; i < this.order.length; i++) this.order[i]!.position = i;
    } else if (this.cursor < this.order.length) this.order = this.order.slice(0, this.cursor);
    this.nextOrder = undefined;
    for (const line of this.order) line.seen = this.scrape;
    this.startTime = this.pendingStartTime ?? this.startTime;
    this.hasBaseline = true;
    if (this.scrape % SWEEP_AFTER_SCRAPES === 0) this.sweep();
    return { ok: true, baseline, deltas, reset };
  }

  /** Drops cached lines and services not seen for a while (Traefik removed them). */
  private sweep(): void {
    const oldest = this.scrape - SWEEP_AFTER_SCRAPES;
    for (const [service, entry] of this.services) if (entry.lastSeen < oldest) this.services.delete(service);
    for (const [key, line] of this.lines) {
      const meaning = line.meaning;
      const orphan = 'entry' in meaning && this.services.get(meaning.entry.service) !== meaning.entry;
      if (line.seen < oldest || orphan) this.lines.delete(key);
    }
    this.s.cacheSweeps += 1;
  }
}

/** The value after the series (and before an optional timestamp), or undefined. */
function parseValue(text: string, from: number, end: number): number | undefined {
  let i = from;
  while (i < end && (text.charCodeAt(i) === 0x20 || text.charCodeAt(i) === 0x09)) i++;
  // Most values are whole numbers under 1e6 (Go writes larger ones with an exponent): read their
  // digits directly, without a substring.
  let whole = 0;
  let j = i;
  for (; j < end && j - i < 15; j++) {
    const digit = text.charCodeAt(j) - 0x30;
    if (digit < 0 || digit > 9) break;
    whole = whole * 10 + digit;
  }
  if (j > i && (j === end || text.charCodeAt(j) === 0x20 || text.charCodeAt(j) === 0x09)) return whole;
  j = i;
  while (j < end && text.charCodeAt(j) !== 0x20 && text.charCodeAt(j) !== 0x09) j++;
  if (j === i) return undefined;
  const token = text.slice(i, j);
  const value = Number(token);
  if (!Number.isNaN(value)) return value;
  if (token === '+Inf') return Infinity;
  if (token === '-Inf') return -Infinity;
  return undefined;
}

function preview(text: string, start: number, end: number): string {
  return JSON.stringify(text.slice(start, Math.min(end, start + 200)));
}
