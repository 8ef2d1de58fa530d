/**
 * Keeps an up-to-date Topology of the swarm at almost no cost to the Docker API:
 *
 * - a full reconcile (GET /services, /tasks, /nodes: three calls whatever the cluster size) at
 *   start, after every reconnect of the events stream, and on a slow resync tick as a safety net;
 * - the events stream for everything in between. Swarm emits no task events, so a service event
 *   (or a local container event) starts polling that one service's tasks until they converge
 *   (running count = desired replicas) or a deadline passes, then stops.
 *
 * The events stream is opened before each reconcile, so nothing that happens during the reconcile
 * is missed. When the stream drops (dockerd restarted, socket gone) it reconnects with backoff and
 * jitter, and reconciles again: nothing stays stale.
 */
import type Docker from 'dockerode';
import type { Logger } from '../lib/logger.js';
import type { HealthRegistry } from '../health/index.js';
import { backoffDelay, failureLogLevel } from '../lib/backoff.js';
import { PeriodicJob } from '../lib/periodic-job.js';
import { withTimeout } from './docker-client.js';
import { DOCKER } from './docker-probe.js';
import {
  parseNode,
  parseService,
  parseTask,
  type SwarmNode,
  type SwarmService,
  type SwarmTask,
  type Topology,
} from './topology.js';

export type DockerApi = Pick<Docker, 'listServices' | 'listTasks' | 'listNodes' | 'getService' | 'getEvents'>;

export interface SwarmWatcherOptions {
  readonly labelPrefix: string;
  readonly resyncMs: number;
  /** How often a converging service's tasks are polled. */
  readonly taskPollMs?: number;
  /** A service that has not converged after this long stops being polled (the resync catches up). */
  readonly convergeDeadlineMs?: number;
}

export interface SwarmWatcherStats {
  readonly apiCalls: Readonly<Record<string, number>>;
  readonly events: number;
  readonly reconciles: number;
  readonly reconnects: number;
  readonly converging: number;
  readonly lastReconcileAt: number | undefined;
  readonly synced: boolean;
}

/** Called with the new topology and when (performance.now()) the change that caused it was seen. */
export type TopologyListener = (topology: Topology, causedAt: number) => void;

const CALL_TIMEOUT_MS = 15_000;

type EventStream = NodeJS.ReadableStream & { destroy?: () => void };

export class SwarmWatcher {
  private services = new Map<string, SwarmService>();
  private tasks = new Map<string, readonly SwarmTask[]>();
  private nodes = new Map<string, SwarmNode>();
  private synced = false;
  private stopped = true;
  private stream: EventStream | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectAttempt = 0;
  private readonly converging = new Map<
    string,
    { deadline: number; timer: NodeJS.Timeout | undefined; causedAt: number }
  >();
  private readonly resync: PeriodicJob;
  private readonly listeners: TopologyListener[] = [];
  private readonly counters = { events: 0, reconciles: 0, reconnects: 0 };
  private readonly apiCalls: Record<string, number> = {};
  private lastReconcileAt: number | undefined;

  constructor(
    private readonly options: SwarmWatcherOptions,
    private readonly deps: { docker: DockerApi; log: Logger; health: HealthRegistry },
  ) {
    this.resync = new PeriodicJob({
      name: 'swarm-resync',
      intervalMs: options.resyncMs,
      firstRunJitterMs: Math.min(options.resyncMs, 5_000),
      log: deps.log,
      run: () => this.reconcile(performance.now()),
    });
  }

  onChange(listener: TopologyListener): void {
    this.listeners.push(listener);
  }

  topology(): Topology {
    return { services: this.services, tasks: this.tasks, nodes: this.nodes };
  }

  /** True once a full reconcile has succeeded: before that the topology is not the truth. */
  isSynced(): boolean {
    return this.synced;
  }

  stats(): SwarmWatcherStats {
    return {
      apiCalls: { ...this.apiCalls },
      ...this.counters,
      converging: this.converging.size,
      lastReconcileAt: this.lastReconcileAt,
      synced: this.synced,
    };
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
    this.resync.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    for (const entry of this.converging.values()) if (entry.timer) clearTimeout(entry.timer);
    this.converging.clear();
    this.closeStream();
    await this.resync.stop();
  }

  /** Three calls, whatever the size of the cluster; replaces the whole state. */
  async reconcile(causedAt: number): Promise<void> {
    const [rawServices, rawTasks, rawNodes] = await Promise.all([
      this.call('services', () =>
        this.deps.docker.listServices({ filters: { label: [`${this.options.labelPrefix}.deployment_id`] } }),
      ),
      this.call('tasks', () => this.deps.docker.listTasks({ filters: { 'desired-state': ['running'] } })),
      this.call('nodes', () => this.deps.docker.listNodes()),
    ]);
    const services = new Map<string, SwarmService>();
    for (const raw of rawServices) {
      const service = parseService(raw, this.options.labelPrefix);
      if (service) services.set(service.id, service);
    }
    const tasks = new Map<string, SwarmTask[]>();
    for (const raw of rawTasks) {
      const task = parseTask(raw);
      if (!task || !services.has(task.serviceId)) continue;
      const list = tasks.get(task.serviceId) ?? [];
      list.push(task);
      tasks.set(task.serviceId, list);
    }
    const nodes = new Map<string, SwarmNode>();
    for (const raw of rawNodes) {
      const node = parseNode(raw);
      if (node) nodes.set(node.id, node);
    }
    this.services = services;
    this.tasks = tasks;
    this.nodes = nodes;
    this.synced = true;
    this.counters.reconciles += 1;
    this.lastReconcileAt = Date.now();
    this.deps.health.up(DOCKER);
    // Services still converging keep being polled; a reconcile does not end that.
    this.emit(causedAt);
  }

  private async call<T>(kind: string, fn: () => Promise<T>): Promise<T> {
    this.apiCalls[kind] = (this.apiCalls[kind] ?? 0) + 1;
    return withTimeout(fn(), CALL_TIMEOUT_MS, `docker ${kind}`);
  }

  private emit(causedAt: number): void {
    const topology = this.topology();
    for (const listener of this.listeners) {
      try {
        listener(topology, causedAt);
      } catch (error) {
        this.deps.log.error({ err: error }, 'topology listener failed');
      }
    }
  }

  // --- events stream -------------------------------------------------------------------------

  private connect(): void {
    if (this.stopped) return;
    this.call('events', () => this.deps.docker.getEvents({ filters: { type: ['service', 'node', 'container'] } }))
      .then(async (stream) => {
        if (this.stopped) {
          (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
          return;
        }
        this.stream = stream;
        this.listen(stream);
        await this.reconcile(performance.now());
        this.reconnectAttempt = 0;
        this.deps.log.info({ services: this.services.size, nodes: this.nodes.size }, 'watching swarm events');
      })
      .catch((error: unknown) => this.scheduleReconnect(error));
  }

  private listen(stream: EventStream): void {
    let buffer = '';
    stream.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line) this.handleEvent(line);
      }
      // A single event is small; a runaway line without newline is dropped rather than kept.
      if (buffer.length > 1_000_000) buffer = '';
    });
    const lost = (reason: unknown) => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      this.scheduleReconnect(reason ?? new Error('events stream ended'));
    };
    stream.on('end', () => lost(new Error('events stream ended')));
    stream.on('close', () => lost(new Error('events stream closed')));
    stream.on('error', (error: Error) => lost(error));
  }

  private closeStream(): void {
    const stream = this.stream;
    this.stream = undefined;
    stream?.destroy?.();
  }

  private scheduleReconnect(reason: unknown): void {
    if (this.stopped) return;
    this.closeStream();
    const message = reason instanceof Error ? reason.message : String(reason);
    this.deps.health.down(DOCKER, message);
    const delay = backoffDelay({ baseMs: 250, maxMs: 15_000 }, this.reconnectAttempt);
    this.reconnectAttempt += 1;
    this.counters.reconnects += 1;
    this.deps.log[failureLogLevel(this.reconnectAttempt)](
      { reason: message, retryInMs: delay, attempt: this.reconnectAttempt },
      'swarm events stream lost; reconnecting',
    );
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
    this.reconnectTimer.unref();
  }

  private handleEvent(line: string): void {
    const seenAt = performance.now();
    let event: { Type?: unknown; Action?: unknown; Actor?: { ID?: unknown; Attributes?: Record<string, unknown> } };
    try {
      event = JSON.parse(line) as typeof event;
    } catch {
      this.deps.log.warn({ line: line.slice(0, 200) }, 'unparsable docker event ignored');
      return;
    }
    this.counters.events += 1;
    const id = typeof event.Actor?.ID === 'string' ? event.Actor.ID : undefined;
    const action = typeof event.Action === 'string' ? event.Action : '';
    switch (event.Type) {
      case 'service':
        if (!id) return;
        if (action === 'remove') this.removeService(id, seenAt);
        else this.refreshService(id, seenAt);
        return;
      case 'node':
        void this.refreshNodes(seenAt);
        return;
      case 'container': {
        // A local container of a service started, died or changed health: its task changed.
        const serviceId = event.Actor?.Attributes?.['com.docker.swarm.service.id'];
        if (
          typeof serviceId === 'string' &&
          this.services.has(serviceId) &&
          /^(start|die|kill|stop|health_status)/.test(action)
        ) {
          this.startConverging(serviceId, seenAt);
        }
        return;
      }
      default:
        return;
    }
  }

  private removeService(id: string, causedAt: number): void {
    this.stopConverging(id);
    const had = this.services.delete(id);
    const hadTasks = this.tasks.delete(id);
    if (had || hadTasks) this.emit(causedAt);
  }

  /** A service was created or updated: read its spec (it may have gained or lost the label), then poll its tasks. */
  private refreshService(id: string, causedAt: number): void {
    this.call('service', () => this.deps.docker.getService(id).inspect())
      .then((raw: unknown) => {
        const service = parseService(raw, this.options.labelPrefix);
        if (!service) {
          this.removeService(id, causedAt);
          return;
        }
        this.services.set(id, service);
        this.startConverging(id, causedAt);
      })
      .catch((error: unknown) => {
        // Gone between the event and the inspect, or Docker unreachable: the stream or the resync will tell.
        if ((error as { statusCode?: number }).statusCode === 404) this.removeService(id, causedAt);
        else this.deps.log.debug({ err: error, serviceId: id }, 'service inspect failed');
      });
  }

  private async refreshNodes(causedAt: number): Promise<void> {
    try {
      const raw = await this.call('nodes', () => this.deps.docker.listNodes());
      const nodes = new Map<string, SwarmNode>();
      for (const item of raw) {
        const node = parseNode(item);
        if (node) nodes.set(node.id, node);
      }
      this.nodes = nodes;
      this.emit(causedAt);
    } catch (error) {
      this.deps.log.debug({ err: error }, 'node list failed');
    }
  }

  private startConverging(serviceId: string, causedAt: number): void {
    const deadline = performance.now() + (this.options.convergeDeadlineMs ?? 120_000);
    const existing = this.converging.get(serviceId);
    if (existing) {
      existing.deadline = deadline;
      existing.causedAt = Math.min(existing.causedAt, causedAt);
      return;
    }
    this.converging.set(serviceId, { deadline, timer: undefined, causedAt });
    void this.pollTasks(serviceId);
  }

  private stopConverging(serviceId: string): void {
    const entry = this.converging.get(serviceId);
    if (entry?.timer) clearTimeout(entry.timer);
    this.converging.delete(serviceId);
  }

  private async pollTasks(serviceId: string): Promise<void> {
    const entry = this.converging.get(serviceId);
    if (!entry || this.stopped) return;
    try {
      const raw = await this.call('tasks', () =>
        this.deps.docker.listTasks({ filters: { service: [serviceId], 'desired-state': ['running'] } }),
      );
      if (!this.services.has(serviceId) || this.converging.get(serviceId) !== entry) return;
      // The filter matches service names and id prefixes too: keep exact id matches only.
      const tasks = raw.map(parseTask).filter((t): t is SwarmTask => t !== undefined && t.serviceId === serviceId);
      const before = this.tasks.get(serviceId) ?? [];
      this.tasks.set(serviceId, tasks);
      if (!sameTasks(before, tasks)) {
        this.emit(entry.causedAt);
        entry.causedAt = performance.now();
      }
      if (this.converged(serviceId, tasks)) {
        this.stopConverging(serviceId);
        return;
      }
    } catch (error) {
      this.deps.log.debug({ err: error, serviceId }, 'task poll failed');
    }
    if (performance.now() > entry.deadline) {
      this.deps.log.info({ serviceId }, 'service did not converge before the deadline; the resync will catch up');
      this.stopConverging(serviceId);
      return;
    }
    entry.timer = setTimeout(() => void this.pollTasks(serviceId), this.options.taskPollMs ?? 200);
    entry.timer.unref();
  }

  private converged(serviceId: string, tasks: readonly SwarmTask[]): boolean {
    const service = this.services.get(serviceId);
    if (!service) return true;
    const running = tasks.filter((t) => t.state === 'running').length;
    if (service.mode === 'replicated') return running === (service.replicas ?? 0) && tasks.length === running;
    return tasks.length > 0 && running === tasks.length;
  }
}

function sameTasks(a: readonly SwarmTask[], b: readonly SwarmTask[]): boolean {
  if (a.length !== b.length) return false;
  const key = (t: SwarmTask) => `${t.id}:${t.state}:${t.addresses.map((x) => x.ip).join(',')}`;
  const keys = new Set(a.map(key));
  return b.every((t) => keys.has(key(t)));
}
