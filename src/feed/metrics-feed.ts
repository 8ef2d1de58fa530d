/**
 * The websocket feed hub: who is subscribed to which deployment, delivery of new samples, and
 * (with Redis) fan-out across instances, so a dashboard connected to any instance sees a
 * deployment wherever its containers run.
 *
 * Cross-node: each instance PUBLISHes its samples per deployment on `swarm-edge:metrics:<id>`
 * and SUBSCRIBEs to a deployment's channel only while a local client watches it. With each
 * PUBLISH goes an entry of the deployment's window stream (window-stream.ts), so a snapshot on
 * any instance holds the whole window of every container, wherever it runs, and a client that
 * reconnects (to any instance) with `since` gets exactly what it missed.
 *
 * A snapshot: subscribe to the channel (confirmed), hold the subscriber's live samples, read the
 * stream, then send stream ∪ live cache ∪ held as one snapshot, deduplicated by container and
 * time; the subscriber then filters late duplicates for a moment (subscriber.ts).
 *
 * Without Redis, a snapshot is the live cache: this node's containers, and remote samples while
 * a local client watches. While Redis is down, local delivery goes on and a resume answers
 * `recovered: false`.
 *
 * The channels are input like any other (remote-message.ts): a forged, oversized or skewed message
 * is counted and dropped, and no handler here throws past an event emitter, where it would take
 * the process down.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../lib/logger.js';
import { withTimeout } from '../lib/with-timeout.js';
import type { FeedBus, Publication } from '../redis/index.js';
import type { WebSocket } from 'ws';
import { isIdentifier } from '../lib/identifiers.js';
import type { LiveCache, Sample } from '../metrics/index.js';
import { allows, allowsNode, type Grant } from './feed-auth.js';
import { NodeFeed } from './node-feed.js';
import { ChannelSubscriptions } from './channel-subscriptions.js';
import type { HostSample } from '../nodes/index.js';
import { CLOSE, parseClientMessage } from './protocol.js';
import type { RequestFigures } from '../traffic/index.js';
import {
  encodeExitMessage,
  encodeFiguresMessage,
  encodeRemoteMessage,
  parseRemoteMessage,
  type ContainerExitFrame,
} from './remote-message.js';
import { WindowStream } from './window-stream.js';
import { sharedFrame, Subscriber, type FeedCounters, type SubscriberLimits } from './subscriber.js';

export const CHANNEL_PREFIX = 'swarm-edge:metrics:';
/** A deployment's latest request figures, for snapshots on any instance (expires with the live window). */
export const FIGURES_KEY_PREFIX = 'swarm-edge:requests:';
const MAX_BAD_MESSAGES = 20;
/** How often backlogged subscribers are retried: their queue goes out this soon after a drain. */
const BACKLOG_RETRY_MS = 50;
/** A snapshot waits this long for the window stream before it is served from the live cache. */
const STREAM_READ_TIMEOUT_MS = 3_000;
/** setTimeout's longest delay (2^31 - 1 ms, about 24.8 days): longer ones fire at once. */
const MAX_TIMER_MS = 2_147_483_647;

export interface FeedOptions extends SubscriberLimits {
  readonly heartbeatMs: number;
  /** The live window: remote samples older than this are refused. */
  readonly windowMs: number;
}

export interface FeedStats {
  /** This process's id, the `from` of its messages on the Redis channels. */
  readonly instanceId: string;
  readonly subscribers: number;
  readonly slowSubscribers: number;
  /** Subscribers whose socket is closed: none, unless a close was missed (it would leak). */
  readonly ghostSubscribers: number;
  readonly subscriptions: number;
  readonly framesSent: number;
  readonly samplesSent: number;
  readonly conflated: number;
  readonly slowDisconnects: number;
  readonly disconnects: number;
  readonly connections: number;
  readonly authFailures: number;
  readonly badMessages: number;
  readonly forbidden: number;
  readonly remoteSamples: number;
  readonly remoteRejected: number;
  /** Rejected remote messages by reason (bad_json, bad_shape, clock_skew, …). */
  readonly remoteRejectedBy: Readonly<Record<string, number>>;
  /** Connections closed before their token was verified (never subscribed). */
  readonly closedDuringAuth: number;
  /** Socket errors: frames over the size limit, resets. */
  readonly socketErrors: number;
  readonly redisPublishFailures: number;
  /** Snapshots read from the window stream, and those served from the live cache instead. */
  readonly snapshotsFromStream: number;
  readonly snapshotsFromCache: number;
  /** Window stream entries refused as invalid. */
  readonly streamRejected: number;
  /** Resumes answered with exactly the samples after `since`, and those answered in full. */
  readonly resumesRecovered: number;
  readonly resumesFull: number;
  /** Samples dropped because the client already had them from its snapshot. */
  readonly duplicatesSuppressed: number;
  /** `requests` frames sent to no one because the socket was over its limit. */
  readonly figuresDropped: number;
  readonly hostFramesDropped: number;
  readonly figuresPublished: number;
  readonly remoteFigures: number;
  /** The node feed (node-feed.ts). */
  readonly nodes: ReturnType<NodeFeed['stats']>;
}

export class MetricsFeed {
  private readonly subscribers = new Set<Subscriber>();
  private readonly byDeployment = new Map<string, Set<Subscriber>>();
  private readonly instanceId = randomUUID();
  private readonly counters: FeedCounters = {
    framesSent: 0,
    samplesSent: 0,
    conflated: 0,
    slowDisconnects: 0,
    duplicatesSuppressed: 0,
    figuresDropped: 0,
    hostFramesDropped: 0,
  };
  private readonly s = {
    figuresPublished: 0,
    remoteFigures: 0,
    disconnects: 0,
    connections: 0,
    authFailures: 0,
    badMessages: 0,
    forbidden: 0,
    remoteSamples: 0,
    remoteRejected: 0,
    redisPublishFailures: 0,
    closedDuringAuth: 0,
    socketErrors: 0,
    snapshotsFromStream: 0,
    snapshotsFromCache: 0,
    streamRejected: 0,
    resumesRecovered: 0,
    resumesFull: 0,
  };
  private readonly stream: WindowStream | undefined;
  /** deployment → its channel's SUBSCRIBE, settled once Redis confirmed it (or failed). */
  private readonly channels: ChannelSubscriptions;
  private readonly remoteRejectedBy: Record<string, number> = {};
  private heartbeat: NodeJS.Timeout | undefined;
  /** Subscribers with samples queued behind a full socket; retried until they drain or close. */
  private readonly backlogged = new Set<Subscriber>();
  private backlogTimer: NodeJS.Timeout | undefined;
  /** deployment → its latest request figures (local or remote), for snapshots; pruned to the live window. */
  private readonly latestFigures = new Map<string, RequestFigures>();
  private readonly nodes: NodeFeed;
  /** This node's id, once Docker told it: its window is kept even while no one watches. */
  private localNodeId: string | undefined;

  constructor(
    private readonly options: FeedOptions,
    private readonly deps: { cache: LiveCache; redis: FeedBus | undefined; log: Logger },
  ) {
    this.stream = deps.redis ? new WindowStream(deps.redis.pub, options.windowMs) : undefined;
    this.channels = new ChannelSubscriptions(CHANNEL_PREFIX, { bus: deps.redis, log: deps.log });
    this.nodes = new NodeFeed(
      { windowMs: options.windowMs, instanceId: this.instanceId },
      { redis: deps.redis, log: deps.log, reject: (reason) => this.rejectRemote(reason) },
    );
    deps.redis?.onMessage((channel, message) => {
      try {
        this.onRemote(channel.toString(), message);
      } catch (error) {
        // Nothing a message holds may reach the emitter: count it like any other bad message.
        this.rejectRemote('handler_error');
        this.deps.log.warn(
          { err: error, channel: channel.toString().slice(0, 200) },
          'a redis feed message could not be handled',
        );
      }
    });
    // Subscriptions asked for while Redis was away failed; (re)subscribe to all on every connect.
    deps.redis?.onReady(() => {
      this.channels.renew(this.byDeployment.keys());
      this.nodes.resubscribe();
    });
  }

  start(): void {
    this.deps.redis?.connect();
    this.heartbeat = setInterval(() => this.beat(), this.options.heartbeatMs);
    this.heartbeat.unref();
  }

  async stop(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.backlogTimer) clearInterval(this.backlogTimer);
    this.backlogTimer = undefined;
    this.backlogged.clear();
    for (const subscriber of this.subscribers) subscriber.close(CLOSE.goingAway, 'server shutting down');
    this.deps.redis?.disconnect();
    await Promise.resolve();
  }

  authFailed(): void {
    this.s.authFailures += 1;
  }

  /** A socket error (an oversized frame, a reset): counted, logged at debug by the caller. */
  socketError(): void {
    this.s.socketErrors += 1;
  }

  stats(): FeedStats {
    let slow = 0;
    let subscriptions = 0;
    let ghosts = 0;
    for (const subscriber of this.subscribers) {
      if (subscriber.isSlow) slow += 1;
      subscriptions += subscriber.subscriptions.size;
      // ws sets CLOSED and emits 'close' in one step: a closed socket still here was never let go.
      if (subscriber.socket.readyState === subscriber.socket.CLOSED) ghosts += 1;
    }
    return {
      instanceId: this.instanceId,
      subscribers: this.subscribers.size,
      slowSubscribers: slow,
      ghostSubscribers: ghosts,
      subscriptions,
      ...this.counters,
      ...this.s,
      remoteRejectedBy: { ...this.remoteRejectedBy },
      nodes: this.nodes.stats(),
    };
  }

  /**
   * Takes over an authenticated socket. A socket that closed while its token was being verified
   * is not taken: its close event is gone, so a subscriber made of it would never leave.
   */
  accept(socket: WebSocket, grant: Grant): boolean {
    if (socket.readyState !== socket.OPEN) {
      this.s.closedDuringAuth += 1;
      return false;
    }
    const subscriber = new Subscriber(socket, this.options, this.counters);
    this.subscribers.add(subscriber);
    this.s.connections += 1;
    if (grant.expiresAt !== undefined) {
      let expiry: NodeJS.Timeout | undefined;
      // A delay past setTimeout's range fires at once: wait in steps of at most its maximum.
      const arm = () => {
        const left = grant.expiresAt! - Date.now();
        if (left <= 0) {
          subscriber.close(CLOSE.unauthorized, 'token expired');
          return;
        }
        expiry = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
        expiry.unref();
      };
      arm();
      socket.once('close', () => clearTimeout(expiry));
    }
    socket.on('pong', () => {
      subscriber.alive = true;
    });
    socket.on('message', (data: Buffer, isBinary: boolean) =>
      this.onMessage(subscriber, grant, isBinary ? undefined : data.toString()),
    );
    socket.once('close', () => {
      this.s.disconnects += 1;
      this.subscribers.delete(subscriber);
      this.backlogged.delete(subscriber);
      for (const deploymentId of subscriber.subscriptions) this.removeSubscription(subscriber, deploymentId);
      for (const nodeId of subscriber.nodeSubscriptions) this.nodes.unsubscribe(subscriber, nodeId);
    });
    return true;
  }

  /** New samples collected on this node: deliver locally, and to other instances through Redis. */
  publishLocal(samples: readonly Sample[]): void {
    const byDeployment = groupByDeployment(samples);
    this.deliver(byDeployment);
    const bus = this.deps.redis;
    const stream = this.stream;
    if (!bus?.ready || !stream) return;
    const now = Date.now();
    // Each stream entry goes with its PUBLISH (see window-stream.ts and FeedBus).
    this.publishRemote(
      bus,
      [...byDeployment].map(([deploymentId, group]) => {
        const message = encodeRemoteMessage(this.instanceId, group);
        return {
          channel: `${CHANNEL_PREFIX}${deploymentId}`,
          message,
          writes: stream.entry(deploymentId, message, now),
        };
      }),
    );
  }

  private publishRemote(bus: FeedBus, publications: readonly Publication[]): void {
    void bus.publishAll(publications).then((failures) => {
      this.s.redisPublishFailures += failures;
    });
  }

  /**
   * A deployment container on this node exited without a stop asked for (a restart): an `exit`
   * frame to the deployment's subscribers, here and on every instance. Not kept for snapshots:
   * the minute rows count every exit.
   */
  publishExit(exit: ContainerExitFrame): void {
    this.deliverExit(exit);
    const bus = this.deps.redis;
    if (!bus?.ready) return;
    this.publishRemote(bus, [
      { channel: `${CHANNEL_PREFIX}${exit.deploymentId}`, message: encodeExitMessage(this.instanceId, exit) },
    ]);
  }

  private deliverExit(exit: ContainerExitFrame): void {
    const subscribers = this.byDeployment.get(exit.deploymentId);
    if (!subscribers) return;
    for (const subscriber of subscribers) subscriber.send({ type: 'exit', ...exit });
  }

  /** This node's new host sample (nodes/node-plugin.ts): to its watchers, here and elsewhere. */
  publishHost(nodeId: string, host: HostSample): void {
    this.localNodeId = nodeId;
    this.nodes.publish(nodeId, host);
  }

  /**
   * A deployment's request figures for the last interval (this instance holds the scraper lease):
   * to local subscribers, and to other instances' through Redis, with the latest kept for snapshots.
   */
  publishRequests(figures: readonly RequestFigures[]): void {
    for (const f of figures) this.deliverFigures(f);
    const bus = this.deps.redis;
    if (!bus?.ready || figures.length === 0) return;
    this.s.figuresPublished += figures.length;
    this.publishRemote(
      bus,
      figures.map((f) => {
        const message = encodeFiguresMessage(this.instanceId, f);
        const key = `${FIGURES_KEY_PREFIX}${f.deploymentId}`;
        return {
          channel: `${CHANNEL_PREFIX}${f.deploymentId}`,
          message,
          writes: [['set', key, message, 'PX', this.options.windowMs]],
        };
      }),
    );
  }

  private deliverFigures(figures: RequestFigures): void {
    const latest = this.latestFigures.get(figures.deploymentId);
    if (latest && latest.ts >= figures.ts) return;
    this.latestFigures.set(figures.deploymentId, figures);
    const subscribers = this.byDeployment.get(figures.deploymentId);
    if (!subscribers) return;
    const frame = JSON.stringify({ type: 'requests', ...figures });
    for (const subscriber of subscribers) subscriber.offerLatest(frame, 'figures');
  }

  /** The latest figures of a deployment this instance has seen, within the live window. */
  private localFigures(deploymentId: string, now: number): RequestFigures | undefined {
    const local = this.latestFigures.get(deploymentId);
    return local && local.ts > now - this.options.windowMs ? local : undefined;
  }

  /** The latest figures of a deployment kept in Redis (published by whichever instance scrapes). */
  private async storedFigures(deploymentId: string, now: number): Promise<RequestFigures | null> {
    const pub = this.deps.redis?.pub;
    if (pub?.status !== 'ready') return null;
    try {
      const stored = await withTimeout(
        pub.getBuffer(`${FIGURES_KEY_PREFIX}${deploymentId}`),
        STREAM_READ_TIMEOUT_MS,
        'request figures read',
      );
      if (!stored) return null;
      const verdict = parseRemoteMessage(deploymentId, stored, now, now - this.options.windowMs, '');
      if (verdict.ok && 'requests' in verdict) return verdict.requests;
      this.s.streamRejected += 1;
    } catch (error) {
      this.deps.log.debug({ err: error, deploymentId }, 'could not read the latest request figures');
    }
    return null;
  }

  private deliver(byDeployment: ReadonlyMap<string, readonly Sample[]>): void {
    for (const [deploymentId, group] of byDeployment) {
      let frame: Buffer | undefined;
      const shared = () => (frame ??= sharedFrame(group));
      for (const subscriber of this.byDeployment.get(deploymentId) ?? []) {
        if (subscriber.offer(deploymentId, group, shared)) this.backlog(subscriber);
      }
    }
  }

  private backlog(subscriber: Subscriber): void {
    this.backlogged.add(subscriber);
    if (this.backlogTimer) return;
    this.backlogTimer = setInterval(() => this.retryBacklog(), BACKLOG_RETRY_MS);
    this.backlogTimer.unref();
  }

  private retryBacklog(): void {
    for (const subscriber of this.backlogged) {
      if (!subscriber.flush()) this.backlogged.delete(subscriber);
    }
    if (this.backlogged.size === 0 && this.backlogTimer) {
      clearInterval(this.backlogTimer);
      this.backlogTimer = undefined;
    }
  }

  private onMessage(subscriber: Subscriber, grant: Grant, text: string | undefined): void {
    const parsed =
      text === undefined
        ? ({ ok: false, code: 'bad_message', message: 'binary frames are not accepted' } as const)
        : parseClientMessage(text);
    if (!parsed.ok) {
      this.s.badMessages += 1;
      subscriber.badMessages += 1;
      subscriber.send({ type: 'error', code: parsed.code, message: parsed.message });
      if (subscriber.badMessages >= MAX_BAD_MESSAGES) subscriber.close(CLOSE.policy, 'too many bad messages');
      return;
    }
    const { message } = parsed;
    if ('nodeId' in message) return this.onNodeMessage(subscriber, grant, message);
    const deploymentId = message.deploymentId;
    if (message.type === 'unsubscribe') {
      if (!subscriber.subscriptions.has(deploymentId)) {
        subscriber.send({
          type: 'error',
          code: 'not_subscribed',
          message: 'not subscribed to this deployment',
          deploymentId,
        });
        return;
      }
      this.removeSubscription(subscriber, deploymentId);
      subscriber.send({ type: 'unsubscribed', deploymentId });
      return;
    }
    if (!allows(grant, deploymentId)) {
      this.s.forbidden += 1;
      subscriber.send({
        type: 'error',
        code: 'forbidden',
        message: 'the token does not grant this deployment',
        deploymentId,
      });
      return;
    }
    if (subscriber.subscriptions.has(deploymentId)) {
      subscriber.send({ type: 'subscribed', deploymentId });
      return;
    }
    if (this.atSubscriptionLimit(subscriber, { deploymentId })) return;
    subscriber.subscriptions.add(deploymentId);
    let set = this.byDeployment.get(deploymentId);
    if (!set) {
      this.byDeployment.set(deploymentId, (set = new Set()));
      this.channels.join(deploymentId);
    }
    set.add(subscriber);
    subscriber.send({ type: 'subscribed', deploymentId });
    void this.sendSnapshot(subscriber, deploymentId, message.since, subscriber.hold(deploymentId));
  }

  private onNodeMessage(
    subscriber: Subscriber,
    grant: Grant,
    message: { type: 'subscribe' | 'unsubscribe'; nodeId: string; since?: number },
  ): void {
    const { nodeId } = message;
    if (message.type === 'unsubscribe') {
      if (!subscriber.nodeSubscriptions.has(nodeId)) {
        subscriber.send({ type: 'error', code: 'not_subscribed', message: 'not subscribed to this node', nodeId });
        return;
      }
      this.nodes.unsubscribe(subscriber, nodeId);
      subscriber.send({ type: 'unsubscribed', nodeId });
      return;
    }
    if (!allowsNode(grant, nodeId)) {
      this.s.forbidden += 1;
      subscriber.send({ type: 'error', code: 'forbidden', message: 'the token does not grant this node', nodeId });
      return;
    }
    if (subscriber.nodeSubscriptions.has(nodeId)) {
      subscriber.send({ type: 'subscribed', nodeId });
      return;
    }
    if (this.atSubscriptionLimit(subscriber, { nodeId })) return;
    this.nodes.subscribe(subscriber, nodeId, message.since);
  }

  /** Deployments and nodes count together against the per-connection limit; says so when reached. */
  private atSubscriptionLimit(subscriber: Subscriber, about: { deploymentId: string } | { nodeId: string }): boolean {
    if (subscriber.subscriptions.size + subscriber.nodeSubscriptions.size < this.options.maxSubscriptions) return false;
    subscriber.send({
      type: 'error',
      code: 'too_many_subscriptions',
      message: `at most ${this.options.maxSubscriptions} subscriptions per connection`,
      ...about,
    });
    return true;
  }

  /**
   * The snapshot of a new subscription (or the samples after `since`), then live. Live samples are
   * held by the subscriber meanwhile and merged in, so none falls between the two.
   */
  private async sendSnapshot(
    subscriber: Subscriber,
    deploymentId: string,
    since: number | undefined,
    hold: object,
  ): Promise<void> {
    const now = Date.now();
    const windowStart = now - this.options.windowMs;
    const resumable = since !== undefined && since >= windowStart;
    const after = resumable ? since : windowStart;
    let stored: Sample[] | undefined;
    if (this.stream && this.deps.redis?.pub.status === 'ready') {
      try {
        // The channel first: whatever the stream read misses then arrives on it.
        if (await this.channels.confirmed(deploymentId)) {
          const read = await withTimeout(
            this.stream.read(deploymentId, after, now),
            STREAM_READ_TIMEOUT_MS,
            'window stream read',
          );
          this.s.streamRejected += read.rejected;
          if (!read.truncated) stored = read.samples;
        }
      } catch (error) {
        this.deps.log.debug({ err: error, deploymentId }, 'window stream read failed; snapshot from the live cache');
      }
    }
    // Read while live samples are still held: nothing may reach the client before its snapshot.
    // Without Redis no await comes between subscribe and snapshot (nothing to hold meanwhile).
    const requests =
      this.localFigures(deploymentId, now) ?? (this.deps.redis ? await this.storedFigures(deploymentId, now) : null);
    // Closed, unsubscribed, or subscribed again meanwhile: that later subscribe sends its own.
    const held = subscriber.release(deploymentId, hold);
    if (held === undefined) return;
    const samples = mergeSamples([stored ?? [], this.deps.cache.snapshot(deploymentId), held], after);
    // Complete when the stream answered, or when there is no Redis (this instance sees all it can).
    const complete = stored !== undefined || this.deps.redis === undefined;
    if (stored !== undefined) this.s.snapshotsFromStream += 1;
    else this.s.snapshotsFromCache += 1;
    const frame: Record<string, unknown> = { type: 'snapshot', deploymentId, samples, requests };
    if (since !== undefined) {
      frame.recovered = resumable && complete;
      if (frame.recovered) this.s.resumesRecovered += 1;
      else this.s.resumesFull += 1;
    }
    subscriber.send(frame);
    subscriber.settle(deploymentId, samples);
  }

  private removeSubscription(subscriber: Subscriber, deploymentId: string): void {
    subscriber.subscriptions.delete(deploymentId);
    subscriber.forget(deploymentId);
    const set = this.byDeployment.get(deploymentId);
    set?.delete(subscriber);
    if (set?.size === 0) {
      this.byDeployment.delete(deploymentId);
      this.channels.leave(deploymentId);
    }
  }

  /** A message from another instance: untrusted input like any other. */
  private onRemote(channel: string, message: Buffer): void {
    if (this.nodes.onRemote(channel, message)) return;
    if (!channel.startsWith(CHANNEL_PREFIX)) return;
    const deploymentId = channel.slice(CHANNEL_PREFIX.length);
    if (!isIdentifier(deploymentId)) return this.rejectRemote('bad_channel');
    const now = Date.now();
    const verdict = parseRemoteMessage(deploymentId, message, now, now - this.options.windowMs, this.instanceId);
    if (!verdict.ok) {
      this.rejectRemote(verdict.reason);
      this.deps.log.debug(
        { deploymentId, reason: verdict.reason, detail: verdict.detail },
        'redis feed message refused',
      );
      return;
    }
    if ('own' in verdict) return;
    if ('requests' in verdict) {
      this.s.remoteFigures += 1;
      this.deliverFigures(verdict.requests);
      return;
    }
    if ('exit' in verdict) {
      this.deliverExit(verdict.exit);
      return;
    }
    this.s.remoteSamples += verdict.samples.length;
    this.deliver(new Map([[deploymentId, verdict.samples]]));
    this.deps.cache.add(verdict.samples);
  }

  private rejectRemote(reason: string): void {
    this.s.remoteRejected += 1;
    this.remoteRejectedBy[reason] = (this.remoteRejectedBy[reason] ?? 0) + 1;
  }

  private beat(): void {
    const now = Date.now();
    const oldest = now - this.options.windowMs;
    this.nodes.prune(now, this.localNodeId);
    for (const [deploymentId, figures] of this.latestFigures)
      if (figures.ts <= oldest) this.latestFigures.delete(deploymentId);
    for (const subscriber of this.subscribers) {
      // A client that stopped reading answers no pings either: name it slow first.
      subscriber.checkSlow();
      if (subscriber.isClosed) continue;
      if (!subscriber.alive) {
        // No pong since the last ping: a dead peer (a laptop closed, a dropped NAT entry).
        subscriber.socket.terminate();
        continue;
      }
      subscriber.alive = false;
      subscriber.socket.ping();
    }
  }
}

/**
 * Samples of several sources as one snapshot: stamped after `after`, each (container, time) once,
 * oldest first.
 */
export function mergeSamples(sources: ReadonlyArray<readonly Sample[]>, after: number): Sample[] {
  const seen = new Set<string>();
  const merged: Sample[] = [];
  for (const source of sources) {
    for (const sample of source) {
      if (sample.ts <= after) continue;
      const key = `${sample.containerId}@${sample.ts}`;
      if (seen.has(key)) continue;
      seen.add(key);
      merged.push(sample);
    }
  }
  return merged.sort((a, b) => a.ts - b.ts);
}

export function groupByDeployment(samples: readonly Sample[]): Map<string, Sample[]> {
  const groups = new Map<string, Sample[]>();
  for (const sample of samples) {
    const group = groups.get(sample.deploymentId);
    if (group) group.push(sample);
    else groups.set(sample.deploymentId, [sample]);
  }
  return groups;
}
