/**
 * The live window of every deployment, shared by all instances through Redis: one stream per
 * deployment (`swarm-edge:window:<id>`), written by whichever instance collects its containers,
 * trimmed to the window and expiring with it. Any instance can then serve a complete snapshot
 * (or a resume from `since`) of a deployment whose containers run on other nodes, including one
 * it has never watched before.
 *
 * Each entry is the same message that goes out on the deployment's channel, added with the
 * PUBLISH in one MULTI, or before it on a cluster (see FeedBus): a reader that SUBSCRIBEs first
 * and then reads the stream misses nothing (an entry is either in the stream when read, or its
 * message comes after).
 *
 * Entries are input like the channels (anyone who can write to Redis can XADD): each is validated
 * as a remote message (remote-message.ts), and a read is bounded in entries and bytes.
 */
import type { RedisClient, RedisCommand } from '../redis/index.js';
import type { Sample } from '../metrics/index.js';
import { parseRemoteMessage } from './remote-message.js';

export const WINDOW_PREFIX = 'swarm-edge:window:';
/** Entries read per XREVRANGE round trip. */
const PAGE = 200;
/** A snapshot read stops past this many bytes of entries: far beyond a real window. */
export const MAX_READ_BYTES = 64 * 1024 * 1024;
/**
 * How much older than the samples wanted an entry id may be: ids are Redis' clock at XADD, samples
 * are stamped by the collecting node before it; allows for that delay and for clock skew.
 */
const ID_SLACK_MS = 60_000;

export interface StreamRead {
  readonly samples: Sample[];
  /** Entries refused as invalid (forged, malformed, wrong deployment). */
  readonly rejected: number;
  /** The read stopped at its byte bound: older entries were left unread. */
  readonly truncated: boolean;
}

export class WindowStream {
  constructor(
    private readonly redis: RedisClient,
    private readonly windowMs: number,
  ) {}

  /** The commands that add one deployment's new samples to its stream (published with them). */
  entry(deploymentId: string, message: string, now: number): RedisCommand[] {
    const key = `${WINDOW_PREFIX}${deploymentId}`;
    return [
      // MINID ~: Redis trims whole macro-nodes only, cheaply; readers filter the rest by time.
      ['xadd', key, 'MINID', '~', String(now - this.windowMs), '*', 'm', message],
      ['pexpire', key, this.windowMs + ID_SLACK_MS],
    ];
  }

  /** The samples of `deploymentId` stamped after `afterMs`, in no particular order (the snapshot sorts). */
  async read(deploymentId: string, afterMs: number, now: number): Promise<StreamRead> {
    const key = Buffer.from(`${WINDOW_PREFIX}${deploymentId}`);
    const oldestId = Math.max(0, afterMs - ID_SLACK_MS);
    const samples: Sample[] = [];
    let rejected = 0;
    let bytes = 0;
    let end = '+';
    for (;;) {
      const page = (await this.redis.xrevrangeBuffer(key, end, String(oldestId), 'COUNT', PAGE)) as Array<
        [Buffer, Buffer[]]
      >;
      for (const [, fields] of page) {
        const message = fields[0]?.toString() === 'm' ? fields[1] : undefined;
        if (message === undefined) {
          rejected += 1;
          continue;
        }
        bytes += message.length;
        if (bytes > MAX_READ_BYTES) return { samples, rejected, truncated: true };
        // Own entries too: the stream is read for completeness, not for echo suppression.
        const verdict = parseRemoteMessage(deploymentId, message, now, -Infinity, '');
        if (!verdict.ok || !('samples' in verdict)) {
          rejected += 1;
          continue;
        }
        for (const sample of verdict.samples) if (sample.ts > afterMs) samples.push(sample);
      }
      if (page.length < PAGE) break;
      end = `(${page[page.length - 1]![0].toString()}`;
    }
    return { samples, rejected, truncated: false };
  }
}
