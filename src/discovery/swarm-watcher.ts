/**
 * Keeps an up-to-date Topology of the swarm at almost no cost to the Docker API:
 *
 * - a full reconcile (GET /services, /tasks, /nodes: three calls whatever the cluster size) at
 *   start, after every reconnect of the events stream, and on a slow resync tick as a safety net;
 * - the events stream for everything in between. Swarm emits no task events, so a service event
 *   (or a local container event) puts the service in the convergence poll (convergence-poller.ts)
 *   until its tasks converge (running count = desired replicas) or a deadline passes: one call
 *   per tick for every converging service together.
 *
 * The events stream is opened before each reconcile, so nothing that happens during the reconcile
 * is missed. When the stream drops (dockerd restarted, socket gone) it reconnects with backoff and
 * jitter, and reconciles again: nothing stays stale.
 */
import { deliveryOf, splitLines } from './docker-events.js';
import type Docker from 'dockerode';
import type { Logger } from '../lib/logger.js';
import type { HealthRegistry } from '../health/index.js';
import { backoffDelay, failureLogLevel } from '../lib/backoff.js';
import { isContainerId, isSwarmId } from '../lib/identifiers.js';
import { notifyAll } from '../lib/listeners.js';
import { PeriodicJob } from '../lib/periodic-job.js';
import { RateCounter } from '../lib/rate-counter.js';
import { ConvergencePoller, DEFAULT_POLLER_OPTIONS, sameTasks } from './convergence-poller.js';
import type { ServingClaim } from './task-serving-channel.js';
import { withTimeout } from './docker-client.js';
import { DOCKER } from './docker-probe.js';
import { HealthcheckMemory } from './healthcheck-memory.js';
import { beforeRunning, TaskStartHints, type TaskStartHintStats } from './task-start-hints.js';
import { TaskStopHints, type TaskStopHintStats } from './task-stop-hints.js';
import {
  containerHasHealthcheck,
  containerTaskId,
  killStops,
  mayStartServing,
  parseNode,
  parseService,
  parseServingContainer,
  parseTask,
  signalNumber,
  type SwarmNode,
  type SwarmService,
  type SwarmTask,
  type Topology,
} from './topology.js';

export type DockerApi = Pick<
  Docker,
  'listServices' | 'listTasks' | 'listNodes' | 'getService' | 'getTask' | 'getEvents' | 'getContainer'
>;

export interface SwarmWatcherOptions {
  readonly labelPrefix: string;
  readonly resyncMs: number;
  /** How often converging services' tasks are polled while they change (and the least time between polls). */
  readonly taskPollMs?: number;
  /** The longest wait between polls of a service whose tasks stay the same without converging. */
  readonly taskPollSlowMs?: number;
  /** A service that has not converged after this long stops being polled (the resync catches up). */
  readonly convergeDeadlineMs?: number;
}

export interface SwarmWatcherStats {
  readonly apiCalls: Readonly<Record<string, number>>;
  /** Docker API calls per second, over the last 10 and 60 seconds. */
  readonly apiCallsPerSecond: { readonly last10s: number; readonly last60s: number };
  readonly events: number;
  readonly reconciles: number;
  readonly reconnects: number;
  readonly converging: number;
  /** Local tasks seen serving before the managers' task list said so (task-start-hints.ts). */
  readonly startHints: TaskStartHintStats;
  /** Local tasks seen told to stop before the managers' task list said so (task-stop-hints.ts). */
  readonly stopHints: TaskStopHintStats;
  readonly lastReconcileAt: number | undefined;
  readonly synced: boolean;
}

/** Called with the new topology and when (performance.now()) the change that caused it was seen. */
export type TopologyListener = (topology: Topology, causedAt: number) => void;

/** A local task start that changed the topology (its hint), for tracing its way to the routes file. */
export interface HintedStart {
  /** From the daemon's event timestamp to the watcher reading it (wall clock); undefined when the event had none. */
  readonly deliveryMs: number | undefined;
  /** performance.now() when the event was read. */
  readonly seenAt: number;
  /** performance.now() when the hint changed the topology (before the listeners heard of it). */
  readonly hintedAt: number;
}
export type StartListener = (start: HintedStart) => void;

/** A container event that may publish a start: when it was read, and how long the daemon took to deliver it. */
interface SeenEvent {
  readonly seenAt: number;
  readonly deliveryMs: number | undefined;
}

const CALL_TIMEOUT_MS = 15_000;
/** Service events this close together are read with one call. */
const REFRESH_BATCH_MS = 50;

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
  private readonly poller: ConvergencePoller;
  private readonly hints = new TaskStartHints();
  private readonly stopHints = new TaskStopHints();
  private readonly healthchecks = new HealthcheckMemory();
  /**
   * When the task lists held were asked (performance.now()): all of them by the last reconcile,
   * some since by the convergence poll. A start hint arriving after a later list is not needed.
   */
  private reconciledAt = Number.NEGATIVE_INFINITY;
  private readonly polledAt = new Map<string, number>();
  /**
   * When the spec held of a service (or its absence: removed) was asked by a refresh or learned
   * from a removal event, since the last reconcile; and the same for the node list. A reconcile
   * that was asked earlier must not put back what these newer answers replaced.
   */
  private readonly specAskedAt = new Map<string, number>();
  private nodesAskedAt = Number.NEGATIVE_INFINITY;
  /** Services named by events since the last refresh, with the earliest time each was seen. */
  private readonly pendingRefresh = new Map<string, number>();
  private refreshTimer: NodeJS.Timeout | undefined;
  private readonly callRate = new RateCounter();
  private readonly resync: PeriodicJob;
  private readonly listeners: TopologyListener[] = [];
  private readonly startListeners: StartListener[] = [];
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
    this.poller = new ConvergencePoller(
      {
        ...DEFAULT_POLLER_OPTIONS,
        fastMs: options.taskPollMs ?? DEFAULT_POLLER_OPTIONS.fastMs,
        slowMs: options.taskPollSlowMs ?? DEFAULT_POLLER_OPTIONS.slowMs,
        deadlineMs: options.convergeDeadlineMs ?? DEFAULT_POLLER_OPTIONS.deadlineMs,
      },
      {
        listTasks: (serviceIds) => this.listRunningTasks(serviceIds),
        current: (serviceId) => this.tasks.get(serviceId),
        converged: (serviceId, tasks) => this.converged(serviceId, tasks),
        isKnown: (serviceId) => this.services.has(serviceId),
        apply: (changes, causedAt, askedAt) => {
          // A reconcile asked after this poll answered first: its lists are the newer. This answer
          // may have ended the services' polls: they go on until a newer list says they converged.
          if (askedAt < this.reconciledAt) {
            for (const serviceId of changes.keys()) this.startConverging(serviceId, causedAt);
            return;
          }
          for (const [serviceId, tasks] of changes) this.tasks.set(serviceId, tasks);
          this.emit(causedAt);
        },
        answered: (serviceIds, askedAt) => {
          if (askedAt < this.reconciledAt) return;
          for (const serviceId of serviceIds) this.polledAt.set(serviceId, askedAt);
        },
        log: deps.log,
      },
    );
  }

  onChange(listener: TopologyListener): void {
    this.listeners.push(listener);
  }

  /** Local task starts published from a hint (called before the topology listeners hear of the change). */
  onStart(listener: StartListener): void {
    this.startListeners.push(listener);
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
      apiCallsPerSecond: { last10s: round(this.callRate.perSecond(10)), last60s: round(this.callRate.perSecond(60)) },
      ...this.counters,
      converging: this.poller.size,
      startHints: this.hints.stats(),
      stopHints: this.stopHints.stats(),
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
    this.poller.stop();
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.pendingRefresh.clear();
    this.closeStream();
    await this.resync.stop();
  }

  /**
   * Three calls, whatever the size of the cluster; replaces the whole state, except what a call
   * asked after these three has answered meanwhile (another reconcile, a task poll, a service
   * refresh or removal, a node list): under churn the reconcile's answers take seconds, and a service's tasks polled in
   * between are newer than its own. Putting its older list back took a task that had just turned
   * `running` out of the routes until the next poll (bench/README.md, swarm-scale).
   */
  async reconcile(causedAt: number): Promise<void> {
    const askedAt = performance.now();
    const [rawServices, rawTasks, rawNodes] = await Promise.all([
      this.call('services', () =>
        this.deps.docker.listServices({ filters: { label: [`${this.options.labelPrefix}.deployment_id`] } }),
      ),
      this.call('tasks', () => this.deps.docker.listTasks({ filters: { 'desired-state': ['running'] } })),
      this.call('nodes', () => this.deps.docker.listNodes()),
    ]);
    // Another reconcile (the periodic one beside a reconnect's) asked later and answered first:
    // everything here is older than what it put in place.
    if (askedAt < this.reconciledAt) return;
    const services = new Map<string, SwarmService>();
    for (const raw of rawServices) {
      const service = parseService(raw, this.options.labelPrefix);
      if (service) services.set(service.id, service);
    }
    for (const [serviceId, at] of this.specAskedAt) {
      if (at <= askedAt) continue;
      const held = this.services.get(serviceId);
      if (held) services.set(serviceId, held);
      else services.delete(serviceId);
    }
    const newerTasks = new Set([...this.polledAt].filter(([, at]) => at > askedAt).map(([serviceId]) => serviceId));
    const tasks = new Map<string, readonly SwarmTask[]>();
    for (const raw of rawTasks) {
      const task = parseTask(raw);
      if (!task || !services.has(task.serviceId) || newerTasks.has(task.serviceId)) continue;
      const list = tasks.get(task.serviceId) as SwarmTask[] | undefined;
      if (list) list.push(task);
      else tasks.set(task.serviceId, [task]);
    }
    // Held lists newer than this answer are already merged with their hints.
    for (const serviceId of newerTasks) {
      const held = this.tasks.get(serviceId);
      if (held && services.has(serviceId)) tasks.set(serviceId, held);
    }
    for (const serviceId of this.hintedServices()) {
      if (!services.has(serviceId)) this.forgetHints(serviceId);
      else if (!newerTasks.has(serviceId))
        tasks.set(serviceId, [...this.mergeHints(serviceId, tasks.get(serviceId) ?? [], askedAt)]);
    }
    const nodes = new Map<string, SwarmNode>();
    for (const raw of rawNodes) {
      const node = parseNode(raw);
      if (node) nodes.set(node.id, node);
    }
    this.services = services;
    this.tasks = tasks;
    if (this.nodesAskedAt <= askedAt) {
      this.nodes = nodes;
      this.nodesAskedAt = askedAt;
    }
    this.reconciledAt = askedAt;
    // What this reconcile answered is now held; only answers asked after it stay newer.
    for (const [serviceId, at] of this.polledAt) if (at <= askedAt) this.polledAt.delete(serviceId);
    for (const [serviceId, at] of this.specAskedAt) if (at <= askedAt) this.specAskedAt.delete(serviceId);
    this.synced = true;
    this.counters.reconciles += 1;
    this.lastReconcileAt = Date.now();
    this.deps.health.up(DOCKER);
    // Services still converging keep being polled; a reconcile does not end that.
    this.emit(causedAt);
  }

  private async call<T>(kind: string, fn: () => Promise<T>): Promise<T> {
    this.apiCalls[kind] = (this.apiCalls[kind] ?? 0) + 1;
    this.callRate.record();
    return withTimeout(fn(), CALL_TIMEOUT_MS, `docker ${kind}`);
  }

  private emit(causedAt: number): void {
    notifyAll(this.listeners, [this.topology(), causedAt], this.deps.log, 'topology');
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
    stream.on(
      'data',
      splitLines((line) => this.handleEvent(line)),
    );
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
    // A container's death may go unseen from now on: its start hint must not outlive it.
    this.hints.dropLocal();
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
    let event: {
      Type?: unknown;
      Action?: unknown;
      timeNano?: unknown;
      Actor?: { ID?: unknown; Attributes?: Record<string, unknown> };
    };
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
        const attributes = event.Actor?.Attributes ?? {};
        const serviceId = attributes['com.docker.swarm.service.id'];
        const taskId = attributes['com.docker.swarm.task.id'];
        if (typeof serviceId !== 'string' || !this.services.has(serviceId)) return;
        if (!/^(start|die|kill|stop|oom|health_status)/.test(action)) return;
        // The ids go into API paths: anything but the daemon's own forms (a container anyone can
        // run with swarm labels of its choosing) only starts the service's poll.
        if (!isContainerId(id) || !isSwarmId(taskId)) {
          this.startConverging(serviceId, seenAt);
          return;
        }
        if (/^(die|stop|oom)/.test(action)) this.hints.ended(serviceId, taskId);
        if (action === 'kill') this.hints.drop(serviceId, taskId);
        if (mayStartServing(action))
          this.hintServing(id, serviceId, taskId, attributes['com.docker.swarm.node.id'], action, {
            seenAt,
            deliveryMs: deliveryOf(event.timeNano, Date.now()),
          });
        if (action === 'kill') void this.hintStopping(id, serviceId, taskId, attributes.signal, seenAt);
        this.startConverging(serviceId, seenAt);
        return;
      }
      default:
        return;
    }
  }

  /**
   * A local container of a deployment started or became healthy: its task is published now,
   * without waiting for the managers' task list to say it runs. When the list held shows the task
   * (on this node, before `running`) and the container is known to serve (a healthy check, or a
   * start with no healthcheck: healthcheck-memory.ts), the list's own fields suffice; otherwise one
   * inspect of the container tells, and teaches whether tasks like it have a healthcheck.
   */
  private hintServing(
    containerId: string,
    serviceId: string,
    taskId: string,
    nodeId: unknown,
    action: string,
    seen: SeenEvent,
  ): void {
    const listed = this.listedHere(serviceId, taskId, nodeId, containerId);
    if (listed !== undefined) {
      // The list already shows it running: nothing to hint.
      if (!beforeRunning(listed.state)) return;
      // A start serves at once unless the container has a healthcheck: then its healthy event will
      // publish it. A healthy event serves now. Not known: the inspect below tells.
      const awaitsHealthy = this.awaitsHealthy(listed, action);
      if (awaitsHealthy === true) return;
      if (awaitsHealthy === false) {
        if (this.hints.recordListed(listed, containerId, seen.seenAt)) this.publishHints(serviceId, seen);
        return;
      }
    } else {
      void this.taskServing(taskId, containerId, serviceId, nodeId, action, seen);
    }
    void this.inspectServing(containerId, serviceId, seen);
  }

  /**
   * Whether this container event leaves the task to wait for its healthy check: a start of a task
   * whose containers have a healthcheck. A healthy event serves. Undefined when not known yet.
   */
  private awaitsHealthy(task: SwarmTask, action: string): boolean | undefined {
    return action === 'start' ? this.healthchecks.hasHealthcheck(task.healthcheckSource) : false;
  }

  /**
   * The task of this node's container as the list held shows it, if that list has its addresses
   * already (or the service needs none) and names no other container or node for it.
   */
  private listedHere(serviceId: string, taskId: string, nodeId: unknown, containerId: string): SwarmTask | undefined {
    const listed = this.tasks.get(serviceId)?.find((task) => task.id === taskId);
    return listed !== undefined && this.isHere(listed, nodeId, containerId) ? listed : undefined;
  }

  /**
   * Whether the managers' view of a task (a list's, or its own record) puts it on this node with
   * this container (or none known yet), and has its addresses (or its service needs none).
   */
  private isHere(task: SwarmTask, nodeId: unknown, containerId: string): boolean {
    if (task.nodeId !== nodeId) return false;
    if (task.containerId !== undefined && task.containerId !== containerId) return false;
    return task.addresses.length > 0 || this.services.get(task.serviceId)?.hostNetwork === true;
  }

  /** When the task list held of the service was asked: by the last reconcile, or a poll since. */
  private listAskedAt(serviceId: string): number {
    return Math.max(this.reconciledAt, this.polledAt.get(serviceId) ?? Number.NEGATIVE_INFINITY);
  }

  private async inspectServing(containerId: string, serviceId: string, seen: SeenEvent): Promise<void> {
    let inspected: unknown;
    try {
      inspected = await this.call('containers', () => this.deps.docker.getContainer(containerId).inspect());
    } catch (error) {
      // Gone already, or the daemon is busy: the task poll still tells.
      this.deps.log.debug({ err: error, containerId }, 'container inspect failed');
      return;
    }
    if (this.stopped || !this.services.has(serviceId)) return;
    const held = this.tasks.get(serviceId) ?? [];
    const listed = held.find((task) => task.id === containerTaskId(inspected));
    if (listed !== undefined && (listed.containerId ?? containerId) === containerId)
      this.healthchecks.learn(listed.healthcheckSource, containerHasHealthcheck(inspected));
    const task = parseServingContainer(inspected);
    if (task?.serviceId !== serviceId) return;
    if (this.hints.record(task, seen.seenAt, { tasks: held, askedAt: this.listAskedAt(serviceId) }))
      this.publishHints(serviceId, seen);
  }

  /**
   * The managers' record of a started task that the list held does not show yet (GET /tasks/{id}),
   * asked beside its container's inspect. A poll lists every converging service's tasks and under
   * churn answered 1–3 s after the start, where the agent had reported the task `running` within
   * tens of milliseconds of it (bench/README.md, swarm-scale); this answers for one task. It
   * publishes the task when the record shows it on this node, with this container, desired
   * `running`, with its addresses, and serving: `running` already (with a healthcheck, Swarm says
   * so only once healthy), or before that after a healthy check or a start known to have no
   * healthcheck. Otherwise the inspect decides.
   */
  private async taskServing(
    taskId: string,
    containerId: string,
    serviceId: string,
    nodeId: unknown,
    action: string,
    seen: SeenEvent,
  ): Promise<void> {
    let raw: unknown;
    try {
      raw = await this.call('task', () => this.deps.docker.getTask(taskId).inspect());
    } catch (error) {
      this.deps.log.debug({ err: error, taskId }, 'task inspect failed');
      return;
    }
    if (this.stopped || !this.services.has(serviceId)) return;
    const task = parseTask(raw);
    if (task === undefined || task.id !== taskId || task.serviceId !== serviceId) return;
    if (task.desiredState !== 'running' || !this.isHere(task, nodeId, containerId)) return;
    const serves =
      task.state === 'running' || (beforeRunning(task.state) && this.awaitsHealthy(task, action) === false);
    if (!serves) return;
    const held = this.tasks.get(serviceId) ?? [];
    if (
      this.hints.recordFromTask({ ...task, containerId }, seen.seenAt, {
        tasks: held,
        askedAt: this.listAskedAt(serviceId),
      })
    )
      this.publishHints(serviceId, seen);
  }

  /** The start hints just recorded for the service, applied to the list held and published. */
  private publishHints(serviceId: string, seen: SeenEvent): void {
    this.tasks.set(serviceId, this.applyHints(serviceId, this.tasks.get(serviceId) ?? []));
    notifyAll(this.startListeners, [{ ...seen, hintedAt: performance.now() }], this.deps.log, 'start');
    this.emit(seen.seenAt);
  }

  /**
   * A local container of a deployment was sent a signal: when it is the container's stop signal,
   * its task leaves the routes now, while the container still serves its drain, instead of when a
   * task list shows its desired state `shutdown` (task-stop-hints.ts). SIGTERM and SIGKILL need no
   * call; another signal needs the container's inspect, for its own stop signal.
   */
  private async hintStopping(
    containerId: string,
    serviceId: string,
    taskId: string,
    rawSignal: unknown,
    seenAt: number,
  ): Promise<void> {
    const signal = signalNumber(rawSignal);
    if (signal === undefined) {
      this.deps.log.debug({ containerId, signal: String(rawSignal).slice(0, 20) }, 'kill event without a known signal');
      return;
    }
    if (!killStops(signal)) {
      try {
        const inspected = (await this.call('containers', () =>
          this.deps.docker.getContainer(containerId).inspect(),
        )) as { Config?: { StopSignal?: unknown } };
        if (!killStops(signal, signalNumber(inspected.Config?.StopSignal))) return;
      } catch (error) {
        this.deps.log.debug({ err: error, containerId }, 'container inspect failed');
        return;
      }
    }
    if (this.stopped || !this.services.has(serviceId) || !this.stopHints.record(serviceId, taskId, seenAt)) return;
    const held = this.tasks.get(serviceId);
    if (!held?.some((task) => task.id === taskId)) return;
    this.tasks.set(serviceId, this.stopHints.applyTo(serviceId, held));
    this.emit(seenAt);
  }

  /** The list held, with the start hints recorded since applied and the stopping tasks taken out. */
  private applyHints(serviceId: string, held: readonly SwarmTask[]): readonly SwarmTask[] {
    return this.stopHints.applyTo(serviceId, this.hints.applyTo(serviceId, held));
  }

  /** Services with start or stop hints. */
  private hintedServices(): Set<string> {
    return new Set([...this.hints.services(), ...this.stopHints.services()]);
  }

  private forgetHints(serviceId: string): void {
    this.hints.forgetService(serviceId);
    this.stopHints.forgetService(serviceId);
  }

  /** A new task list of the service, asked at `askedAt`, merged with both kinds of hints. */
  private mergeHints(serviceId: string, listed: readonly SwarmTask[], askedAt: number): readonly SwarmTask[] {
    return this.stopHints.merge(serviceId, this.hints.merge(serviceId, listed, askedAt), askedAt);
  }

  /**
   * Another node says a task of this service serves (task-serving-channel.ts): promoted at once if
   * the task list held shows it there before `running`, or when a later list does; and the
   * service is polled, as after a local container event.
   */
  announce(claim: ServingClaim, seenAt: number): void {
    if (this.stopped || !this.services.has(claim.serviceId)) return;
    this.hints.announce(claim, seenAt);
    const held = this.tasks.get(claim.serviceId);
    if (held?.some((task) => task.id === claim.taskId)) {
      const applied = this.applyHints(claim.serviceId, held);
      if (!sameTasks(held, applied)) {
        this.tasks.set(claim.serviceId, applied);
        this.emit(seenAt);
      }
    }
    this.startConverging(claim.serviceId, seenAt);
  }

  private removeService(id: string, causedAt: number): void {
    this.specAskedAt.set(id, performance.now());
    this.forgetHints(id);
    this.polledAt.delete(id);
    this.stopConverging(id);
    const had = this.services.delete(id);
    const hadTasks = this.tasks.delete(id);
    if (had || hadTasks) this.emit(causedAt);
  }

  /**
   * A service was created or updated: read its spec (it may have gained or lost the label), then
   * poll its tasks. A rolling update sends a burst of update events per service: the services
   * named within REFRESH_BATCH_MS are read together, with one filtered `GET /services`.
   */
  private refreshService(id: string, causedAt: number): void {
    const pending = this.pendingRefresh.get(id);
    this.pendingRefresh.set(id, pending === undefined ? causedAt : Math.min(pending, causedAt));
    if (this.refreshTimer) return;
    this.refreshTimer = setTimeout(() => void this.refreshPending(), REFRESH_BATCH_MS);
    this.refreshTimer.unref();
  }

  private async refreshPending(): Promise<void> {
    this.refreshTimer = undefined;
    const batch = new Map(this.pendingRefresh);
    this.pendingRefresh.clear();
    if (batch.size === 0 || this.stopped) return;
    const askedAt = performance.now();
    try {
      const raw = await this.call('services', () =>
        this.deps.docker.listServices({ filters: { id: [...batch.keys()] } }),
      );
      const found = new Map<string, unknown>();
      for (const item of raw) {
        const itemId = (item as { ID?: unknown }).ID;
        // The filter matches id prefixes too: keep exact matches only.
        if (typeof itemId === 'string' && batch.has(itemId)) found.set(itemId, item);
      }
      for (const [id, causedAt] of batch) {
        // A reconcile or another refresh asked after this call answered first: its spec (or its
        // absence) is the newer.
        if (askedAt < this.reconciledAt || askedAt < (this.specAskedAt.get(id) ?? Number.NEGATIVE_INFINITY)) {
          if (this.services.has(id)) this.startConverging(id, causedAt);
          continue;
        }
        const service = found.has(id) ? parseService(found.get(id), this.options.labelPrefix) : undefined;
        // Gone, or no longer labelled as a deployment.
        if (!service) {
          this.removeService(id, causedAt);
          continue;
        }
        this.services.set(id, service);
        this.specAskedAt.set(id, askedAt);
        this.startConverging(id, causedAt);
      }
    } catch (error) {
      // Docker unreachable: the stream's reconnect (and its reconcile) or the resync will tell.
      this.deps.log.debug({ err: error, services: batch.size }, 'service refresh failed');
    }
  }

  private async refreshNodes(causedAt: number): Promise<void> {
    const askedAt = performance.now();
    try {
      const raw = await this.call('nodes', () => this.deps.docker.listNodes());
      const nodes = new Map<string, SwarmNode>();
      for (const item of raw) {
        const node = parseNode(item);
        if (node) nodes.set(node.id, node);
      }
      // Two lists in flight (events close together): the later asked wins.
      if (askedAt < this.nodesAskedAt) return;
      this.nodes = nodes;
      this.nodesAskedAt = askedAt;
      this.emit(causedAt);
    } catch (error) {
      this.deps.log.debug({ err: error }, 'node list failed');
    }
  }

  private startConverging(serviceId: string, causedAt: number): void {
    this.poller.start(serviceId, causedAt);
  }

  private stopConverging(serviceId: string): void {
    this.poller.forget(serviceId);
  }

  /** One call: the running-desired tasks of these services, or of every service. */
  private async listRunningTasks(serviceIds: readonly string[] | undefined): Promise<SwarmTask[]> {
    const filters: Record<string, string[]> = { 'desired-state': ['running'] };
    if (serviceIds !== undefined) filters.service = [...serviceIds];
    const askedAt = performance.now();
    const raw = await this.call('tasks', () => this.deps.docker.listTasks({ filters }));
    // The filter matches service names and id prefixes too: keep exact id matches only.
    const wanted = serviceIds === undefined ? undefined : new Set(serviceIds);
    const listed = raw
      .map(parseTask)
      .filter((t): t is SwarmTask => t !== undefined && (wanted === undefined || wanted.has(t.serviceId)));
    const hinted = [...this.hintedServices()].filter((id) => wanted === undefined || wanted.has(id));
    if (hinted.length === 0) return listed;
    // Started tasks the answer lags behind stay started, stopping ones stay out (task-*-hints.ts).
    const byService = new Map<string, SwarmTask[]>(hinted.map((id) => [id, []]));
    const rest: SwarmTask[] = [];
    for (const task of listed) (byService.get(task.serviceId) ?? rest).push(task);
    for (const [serviceId, tasks] of byService) rest.push(...this.mergeHints(serviceId, tasks, askedAt));
    return rest;
  }

  private converged(serviceId: string, tasks: readonly SwarmTask[]): boolean {
    const service = this.services.get(serviceId);
    if (!service) return true;
    // Started or stopping tasks the managers have not confirmed yet: poll until they do.
    if (this.hints.pending(serviceId) || this.stopHints.pending(serviceId)) return false;
    // Mid-update, the next batch's tasks are told to stop without any event reaching a manager
    // whose node does not run them: keep polling until Swarm says the update ended.
    if (service.updating) return false;
    const running = tasks.filter((t) => t.state === 'running').length;
    if (service.mode === 'replicated') return running === (service.replicas ?? 0) && tasks.length === running;
    return tasks.length > 0 && running === tasks.length;
  }
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
