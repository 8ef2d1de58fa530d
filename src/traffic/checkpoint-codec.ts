/**
 * A checkpoint's counters as stored: gzipped JSON, bounds as strings ("+Inf" is not JSON), services
 * as [name, vector] pairs (never object keys, so no name can be `__proto__`). Read back with the
 * same care as any input: the database is shared with whoever else can write to it.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { vectorLength } from './figures.js';
import { MAX_SERVICES, type CounterSnapshot } from './service-counters.js';

const VERSION = 1;
const MAX_DECODED_BYTES = 512 * 1024 * 1024;

export function encodeSnapshot(snapshot: CounterSnapshot): Buffer {
  const services: [string, number[]][] = [];
  for (const [name, vector] of snapshot.services) services.push([name, Array.from(vector)]);
  const json = JSON.stringify({
    v: VERSION,
    startTime: snapshot.startTime ?? null,
    bounds: snapshot.bounds.map((le) => (le === Infinity ? '+Inf' : String(le))),
    services,
  });
  return gzipSync(json, { level: 1 });
}

export class CheckpointError extends Error {}

export function decodeSnapshot(bytes: Buffer): CounterSnapshot {
  let value: unknown;
  try {
    value = JSON.parse(gunzipSync(bytes, { maxOutputLength: MAX_DECODED_BYTES }).toString('utf8'));
  } catch (error) {
    throw new CheckpointError(`checkpoint does not decode: ${(error as Error).message}`);
  }
  const v = value as { v?: unknown; startTime?: unknown; bounds?: unknown; services?: unknown };
  if (typeof value !== 'object' || value === null || v.v !== VERSION)
    throw new CheckpointError('unknown checkpoint version');
  const startTime = v.startTime === null ? undefined : v.startTime;
  if (startTime !== undefined && (typeof startTime !== 'number' || !Number.isFinite(startTime)))
    throw new CheckpointError('bad start time');
  if (!Array.isArray(v.bounds) || v.bounds.length > 64) throw new CheckpointError('bad bounds');
  const bounds = v.bounds.map((b: unknown) => (b === '+Inf' ? Infinity : typeof b === 'string' ? Number(b) : NaN));
  if (bounds.some((le, i) => !(le >= 0) || (i > 0 && le <= bounds[i - 1]!))) throw new CheckpointError('bad bounds');
  if (!Array.isArray(v.services) || v.services.length > MAX_SERVICES) throw new CheckpointError('bad services');
  const length = vectorLength(bounds.length);
  const services = new Map<string, Float64Array>();
  for (const pair of v.services as unknown[]) {
    if (!Array.isArray(pair) || pair.length !== 2) throw new CheckpointError('bad service entry');
    const [name, vector] = pair as [unknown, unknown];
    if (typeof name !== 'string' || name === '' || name.length > 512) throw new CheckpointError('bad service name');
    if (!Array.isArray(vector) || vector.length !== length) throw new CheckpointError(`bad vector of ${name}`);
    if (vector.some((x) => typeof x !== 'number' || !Number.isFinite(x) || x < 0))
      throw new CheckpointError(`bad vector of ${name}`);
    services.set(name, Float64Array.from(vector as number[]));
  }
  return { startTime, bounds, services };
}
