/**
 * Messages from other instances on the Redis channels: untrusted input, as strictly validated as
 * anything a client sends. Anyone who can PUBLISH on the Redis server can put a message on a
 * channel, so a message is accepted only when it is a bounded JSON object holding samples of the
 * channel's own deployment, each of exactly the shape this service produces, with plausible
 * values and a timestamp near the local clock. Anything else is counted and dropped.
 */
import { z } from 'zod';
import { IDENTIFIER_PATTERN } from '../lib/identifiers.js';
import { FUTURE_TOLERANCE_MS, type Sample } from '../metrics/index.js';
import type { RequestFigures } from '../traffic/index.js';

/** Far above what one instance publishes per deployment and tick (a sample is ~600 bytes). */
export const MAX_REMOTE_MESSAGE_BYTES = 1024 * 1024;
export const MAX_REMOTE_SAMPLES = 1_000;

const id = z.string().regex(IDENTIFIER_PATTERN);
const count = z.number().min(0).max(Number.MAX_SAFE_INTEGER);
const nullableCount = count.nullable();

const sampleSchema = z.strictObject({
  containerId: z.string().regex(/^[a-f0-9]{12,64}$/),
  deploymentId: id,
  nodeId: id,
  serviceId: id.nullable(),
  taskId: id.nullable(),
  ts: z.number(),
  cpuPercent: z.number().min(0).max(100_000).nullable(),
  memoryBytes: nullableCount,
  memoryLimitBytes: nullableCount,
  pids: nullableCount,
  netRxBytes: nullableCount,
  netTxBytes: nullableCount,
  blockReadBytes: nullableCount,
  blockWriteBytes: nullableCount,
  netRxDelta: count,
  netTxDelta: count,
  blockReadDelta: count,
  blockWriteDelta: count,
  netRxRate: nullableCount,
  netTxRate: nullableCount,
  blockReadRate: nullableCount,
  blockWriteRate: nullableCount,
  // Optional: instances before these fields publish samples without them.
  cpuThrottledPeriods: nullableCount.optional(),
  cpuThrottledSeconds: nullableCount.optional(),
  oomKills: nullableCount.optional(),
  cpuThrottledPeriodsDelta: count.optional(),
  cpuThrottledSecondsDelta: count.optional(),
  oomKillsDelta: count.optional(),
});

const messageSchema = z.strictObject({
  from: z.string().min(1).max(64),
  samples: z.array(sampleSchema).min(1).max(MAX_REMOTE_SAMPLES),
});

const latency = z.number().min(0).max(86_400_000).nullable();
/** A `requests` frame's figures (traffic/request-figures.ts). */
export const requestFiguresSchema = z.strictObject({
  deploymentId: id,
  ts: z.number(),
  intervalMs: z.number().int().min(1).max(86_400_000),
  requests: count,
  requestsPerSecond: count,
  status: z.strictObject({ '1xx': count, '2xx': count, '3xx': count, '4xx': count, '5xx': count, other: count }),
  requestBytes: count,
  responseBytes: count,
  latencyMs: z.strictObject({ p50: latency, p95: latency, p99: latency }),
  openConnections: count,
});

/** A container's exit that was not asked for (metrics/container-exits.ts): an `exit` frame. */
export const exitSchema = z.strictObject({
  deploymentId: id,
  containerId: z.string().regex(/^[a-f0-9]{64}$/),
  nodeId: id,
  exitCode: z.number().int().min(0).max(255).nullable(),
  reason: z.enum(['oom', 'crashed', 'completed']),
  ts: z.number(),
});
export type ContainerExitFrame = z.infer<typeof exitSchema>;

const exitMessageSchema = z.strictObject({ from: z.string().min(1).max(64), exit: exitSchema });

const figuresMessageSchema = z.strictObject({
  from: z.string().min(1).max(64),
  requests: requestFiguresSchema,
});

export type RemoteVerdict =
  | { readonly ok: true; readonly from: string; readonly samples: readonly Sample[] }
  | { readonly ok: true; readonly from: string; readonly requests: RequestFigures }
  | { readonly ok: true; readonly from: string; readonly exit: ContainerExitFrame }
  /** This instance's own message, come back: not validated, not delivered again. */
  | { readonly ok: true; readonly own: true }
  | {
      readonly ok: false;
      readonly reason: 'too_large' | 'bad_json' | 'bad_shape' | 'wrong_deployment' | 'clock_skew' | 'too_old';
      readonly detail: string;
    };

export function encodeRemoteMessage(from: string, samples: readonly Sample[]): string {
  return JSON.stringify({ from, samples });
}

export function encodeFiguresMessage(from: string, requests: RequestFigures): string {
  return JSON.stringify({ from, requests });
}

export function encodeExitMessage(from: string, exit: ContainerExitFrame): string {
  return JSON.stringify({ from, exit });
}

/**
 * Validates one message of `deploymentId`'s channel. `oldestMs` is the start of the live window:
 * older samples are of no use to anyone and are refused too. A message from `selfId` (each
 * instance receives its own publishes back) is recognised before the costly validation.
 */
export function parseRemoteMessage(
  deploymentId: string,
  message: Buffer,
  now: number,
  oldestMs: number,
  selfId: string,
): RemoteVerdict {
  if (message.length > MAX_REMOTE_MESSAGE_BYTES)
    return { ok: false, reason: 'too_large', detail: `${message.length} bytes` };
  let value: unknown;
  try {
    value = JSON.parse(message.toString('utf8'));
  } catch {
    return { ok: false, reason: 'bad_json', detail: 'not JSON' };
  }
  if (value !== null && typeof value === 'object' && (value as { from?: unknown }).from === selfId)
    return { ok: true, own: true };
  if (value !== null && typeof value === 'object' && Object.hasOwn(value, 'requests'))
    return parseFigures(deploymentId, value, now, oldestMs);
  if (value !== null && typeof value === 'object' && Object.hasOwn(value, 'exit'))
    return parseExit(deploymentId, value, now, oldestMs);
  const parsed = messageSchema.safeParse(value);
  if (!parsed.success) return badShape(parsed.error);
  const samples = parsed.data.samples as Sample[];
  for (const sample of samples) {
    const refused = outOfPlace('a sample', sample, deploymentId, now, oldestMs);
    if (refused) return refused;
  }
  return { ok: true, from: parsed.data.from, samples };
}

type Refusal = Extract<RemoteVerdict, { ok: false }>;

/** Why an item of `deploymentId`'s channel is refused: another deployment's, from the future, or past the window. */
function outOfPlace(
  what: string,
  item: { readonly deploymentId: string; readonly ts: number },
  deploymentId: string,
  now: number,
  oldestMs: number,
): Refusal | undefined {
  if (item.deploymentId !== deploymentId)
    return {
      ok: false,
      reason: 'wrong_deployment',
      detail: `${what} of ${item.deploymentId} on ${deploymentId}'s channel`,
    };
  if (item.ts > now + FUTURE_TOLERANCE_MS)
    return {
      ok: false,
      reason: 'clock_skew',
      detail: `${what} stamped ${item.ts - now} ms ahead of this instance's clock`,
    };
  if (item.ts <= oldestMs) return { ok: false, reason: 'too_old', detail: `${what} older than the live window` };
  return undefined;
}

/** The first schema issue, as a bad_shape refusal. */
function badShape(error: z.ZodError): Refusal {
  const issue = error.issues[0];
  return { ok: false, reason: 'bad_shape', detail: `${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}` };
}

function parseFigures(deploymentId: string, value: object, now: number, oldestMs: number): RemoteVerdict {
  const parsed = figuresMessageSchema.safeParse(value);
  if (!parsed.success) return badShape(parsed.error);
  const requests = parsed.data.requests as RequestFigures;
  return outOfPlace('figures', requests, deploymentId, now, oldestMs) ?? { ok: true, from: parsed.data.from, requests };
}

function parseExit(deploymentId: string, value: object, now: number, oldestMs: number): RemoteVerdict {
  const parsed = exitMessageSchema.safeParse(value);
  if (!parsed.success) return badShape(parsed.error);
  const { exit } = parsed.data;
  return outOfPlace('an exit', exit, deploymentId, now, oldestMs) ?? { ok: true, from: parsed.data.from, exit };
}
