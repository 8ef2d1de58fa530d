/**
 * The websocket feed's protocol (GET /ws/metrics), JSON text frames. Documented in the README.
 *
 * Client → server:
 *   {"type":"subscribe","deploymentId":"dep-1"}     snapshot of the live window, then every new sample
 *   {"type":"subscribe","deploymentId":"dep-1","since":1764500000000}
 *                                                   resume: only samples stamped after `since`
 *   {"type":"unsubscribe","deploymentId":"dep-1"}
 *   {"type":"subscribe","nodeId":"n1","since"?:<ms>}  a node's host samples (node-feed.ts): snapshot, then live
 *   {"type":"unsubscribe","nodeId":"n1"}
 * Server → client:
 *   {"type":"subscribed","deploymentId":"dep-1"}
 *   {"type":"snapshot","deploymentId":"dep-1","samples":[...]}   oldest first
 *   {"type":"snapshot",...,"recovered":true|false}  answering `since`: true when exactly the samples
 *                                                   after it were sent; false when it was older than
 *                                                   the window (or Redis was away): a full snapshot
 *   {"type":"samples","samples":[...]}                 newest sample per container since the last frame
 *   {"type":"unsubscribed","deploymentId":"dep-1"}
 *   {"type":"exit","deploymentId":"dep-1","containerId":…,"exitCode":…,"reason":…}  a restart
 *   {"type":"subscribed"|"unsubscribed","nodeId":"n1"}
 *   {"type":"snapshot","nodeId":"n1","host":[...],"recovered"?:bool}   the node's live window, oldest first
 *   {"type":"host","nodeId":"n1","sample":{...}}       each new host sample of the node
 *   {"type":"error","code":"...","message":"...","deploymentId"?:"..."}
 */
import { z } from 'zod';
import { IDENTIFIER_PATTERN } from '../lib/identifiers.js';

/** Close codes (4000-4999 are the application's). */
export const CLOSE = {
  /** Token missing, invalid or expired. */
  unauthorized: 4001,
  /** The client did not read fast enough: its buffered bytes stayed over the limit for the grace period. */
  slow: 4008,
  /** Too many bad messages. */
  policy: 1008,
  /** Frame larger than maxPayload (sent by ws itself). */
  tooBig: 1009,
  /** The server is shutting down. */
  goingAway: 1001,
} as const;

export const MAX_PAYLOAD_BYTES = 4096;

const deploymentId = z.string().regex(IDENTIFIER_PATTERN, 'must be 1-128 characters of letters, digits, _ . : -');
const nodeId = deploymentId;
const since = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional();

export const clientMessage = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('subscribe'),
    deploymentId,
    since,
  }),
  z.strictObject({ type: z.literal('unsubscribe'), deploymentId }),
]);
export const nodeClientMessage = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('subscribe'), nodeId, since }),
  z.strictObject({ type: z.literal('unsubscribe'), nodeId }),
]);
export type ClientMessage = z.infer<typeof clientMessage> | z.infer<typeof nodeClientMessage>;

export type ErrorCode = 'bad_json' | 'bad_message' | 'forbidden' | 'too_many_subscriptions' | 'not_subscribed';

export function parseClientMessage(
  text: string,
): { ok: true; message: ClientMessage } | { ok: false; code: ErrorCode; message: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, code: 'bad_json', message: 'frame is not valid JSON' };
  }
  // A message naming a node is about a node: its errors then speak of nodeId, not deploymentId.
  const isNode = value !== null && typeof value === 'object' && Object.hasOwn(value, 'nodeId');
  const parsed = (isNode ? nodeClientMessage : clientMessage).safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? `${issue.path.join('.')}: ` : '';
    return {
      ok: false,
      code: 'bad_message',
      message: `${where}${issue?.message ?? 'invalid message'} (expected {"type":"subscribe"|"unsubscribe","deploymentId"|"nodeId":"...","since"?:<ms>})`,
    };
  }
  return { ok: true, message: parsed.data };
}
