/**
 * Tasks that started serving on other nodes, announced through Redis.
 *
 * A router sees container events of its own node only; on a cluster of several nodes most new
 * tasks run elsewhere, and their `running` reaches the router only through the managers' task
 * list, which lags by seconds under churn. Every node's metrics role therefore announces each swarm
 * container of its node that starts serving (started; healthy, with a healthcheck), and routers
 * promote the announced task (see TaskStartHints.announce).
 *
 * Redis is input: a message only names a task (task, service, node and container ids), and a
 * router acts on it only for a task its own task list already holds on that node, with that
 * container when the list knows it, before `running`. Addresses always come from the managers, so
 * a forged message can at worst publish a known task of the right node a moment early; it can
 * never add a server. Malformed, oversized or stale messages are refused, logged and counted.
 */
import type Docker from 'dockerode';
import { isContainerId, isSwarmId } from '../lib/identifiers.js';
import type { Logger } from '../lib/logger.js';
import type { FeedBus, RedisClient } from '../redis/index.js';
import { DockerEventStream } from './docker-events.js';
import { withTimeout } from './docker-client.js';
import { mayStartServing, parseServingContainer, type SwarmTask } from './topology.js';

export const TASK_SERVING_CHANNEL = 'swarm-edge:task-serving';

/** A task named as serving by the node that runs it. */
export interface ServingClaim {
  readonly taskId: string;
  readonly serviceId: string;
  readonly nodeId: string;
  readonly containerId: string;
}

const MAX_MESSAGE_BYTES = 512;
/** An announcement older than this (or this far ahead) is refused: a replay, or a clock far off. */
const MAX_AGE_MS = 30_000;
const MAX_AHEAD_MS = 5_000;

export function encodeServingClaim(task: SwarmTask, at: number): string {
  return JSON.stringify({
    v: 1,
    task: task.id,
    service: task.serviceId,
    node: task.nodeId,
    container: task.containerId,
    at,
  });
}

export function parseServingClaim(message: Buffer, now: number): ServingClaim | { reason: string } {
  if (message.length > MAX_MESSAGE_BYTES) return { reason: `is larger than ${MAX_MESSAGE_BYTES} bytes` };
  let value: unknown;
  try {
    value = JSON.parse(message.toString('utf8'));
  } catch {
    return { reason: 'is not JSON' };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { reason: 'is not an object' };
  const fields = value as Record<string, unknown>;
  const keys = Object.keys(fields).sort().join(',');
  if (keys !== 'at,container,node,service,task,v') return { reason: `has fields ${keys.slice(0, 100)}` };
  if (fields.v !== 1) return { reason: 'has an unknown version' };
  for (const key of ['task', 'service', 'node'] as const) {
    if (!isSwarmId(fields[key])) return { reason: `${key} is not a swarm id` };
  }
  if (!isContainerId(fields.container)) return { reason: 'container is not a container id' };
  if (typeof fields.at !== 'number' || !(fields.at >= now - MAX_AGE_MS && fields.at <= now + MAX_AHEAD_MS))
    return { reason: 'at is not a time within the last 30 s' };
  return {
    taskId: fields.task as string,
    serviceId: fields.service as string,
    nodeId: fields.node as string,
    containerId: fields.container,
  };
}

/**
 * On every node: watches its swarm containers start or turn healthy, and announces each once it
 * serves (one inspect per event).
 */
export class TaskServingAnnouncer {
  private readonly events: DockerEventStream;
  private readonly s = { announced: 0, failed: 0 };
  private stopped = false;

  constructor(
    private readonly deps: {
      docker: Pick<Docker, 'getEvents' | 'getContainer'>;
      redis: RedisClient;
      log: Logger;
      now?: () => number;
    },
  ) {
    this.events = new DockerEventStream(
      // `health_status` matches its actions (`health_status: healthy`, ...) as a prefix.
      { name: 'task starts', filters: { type: ['container'], event: ['start', 'health_status'] } },
      { docker: deps.docker, log: deps.log, onEvent: (event) => void this.handle(event) },
    );
  }

  start(): void {
    this.stopped = false;
    this.events.start();
  }

  stop(): void {
    this.stopped = true;
    this.events.stop();
  }

  stats() {
    return { ...this.s, events: this.events.stats() };
  }

  private async handle(event: unknown): Promise<void> {
    const e = event as { Action?: unknown; Actor?: { ID?: unknown; Attributes?: Record<string, unknown> } };
    const id = e.Actor?.ID;
    if (!mayStartServing(e.Action)) return;
    if (typeof id !== 'string' || typeof e.Actor?.Attributes?.['com.docker.swarm.task.id'] !== 'string') return;
    try {
      const task = parseServingContainer(
        await withTimeout(this.deps.docker.getContainer(id).inspect(), 5_000, 'docker inspect'),
      );
      if (task === undefined || this.stopped) return;
      const message = encodeServingClaim(task, (this.deps.now ?? Date.now)());
      const redis = this.deps.redis;
      await (redis.isCluster
        ? redis.spublish(TASK_SERVING_CHANNEL, message)
        : redis.publish(TASK_SERVING_CHANNEL, message));
      this.s.announced += 1;
    } catch (error) {
      // Redis or the daemon away: the managers' task list still tells the routers, later.
      this.s.failed += 1;
      this.deps.log.debug({ err: error, containerId: id }, 'task start not announced');
    }
  }
}

/** On routers: the announcements of every node, validated, handed to `onClaim`. */
export class TaskServingListener {
  private readonly s = { received: 0, refused: 0 };

  constructor(
    private readonly deps: {
      bus: FeedBus;
      log: Logger;
      onClaim: (claim: ServingClaim, seenAt: number) => void;
      now?: () => number;
    },
  ) {}

  start(): void {
    const subscribe = () =>
      this.deps.bus.subscribe(TASK_SERVING_CHANNEL).catch((error: unknown) => {
        this.deps.log.debug({ err: error }, 'task-serving subscription failed; tried again on reconnect');
      });
    this.deps.bus.onMessage((_channel, message) => this.receive(message));
    // Again on every (re)connection: a subscription that failed while Redis was away is not kept.
    this.deps.bus.onReady(() => void subscribe());
    this.deps.bus.connect();
    void subscribe();
  }

  stop(): void {
    this.deps.bus.disconnect();
  }

  stats() {
    return { ...this.s };
  }

  private receive(message: Buffer): void {
    const seenAt = performance.now();
    this.s.received += 1;
    const claim = parseServingClaim(message, (this.deps.now ?? Date.now)());
    if ('reason' in claim) {
      this.s.refused += 1;
      this.deps.log.warn(
        { channel: TASK_SERVING_CHANNEL, message: message.toString('utf8', 0, 200), reason: claim.reason },
        'task-serving announcement refused',
      );
      return;
    }
    this.deps.onClaim(claim, seenAt);
  }
}
