/**
 * SwarmWatcher's use of start hints, against a scripted Docker API whose task list lags: what a
 * local container event and another node's announcement may change in the topology, and what
 * they may not; and what a reconcile, whose answers come late under churn, may replace.
 */
import { PassThrough } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { HealthRegistry } from '../health/index.js';
import { DOCKER } from './docker-probe.js';
import { SwarmWatcher, type DockerApi, type HintedStart } from './swarm-watcher.js';

const id = (c: string) => c.repeat(25);
const SERVICE = id('s');
const NODE = id('n');
const OTHER_NODE = id('m');
const container = (n: number) => String(n).repeat(64).slice(0, 64);

interface RawTask {
  ID: string;
  ServiceID: string;
  NodeID: string;
  DesiredState: string;
  Status: { State: string; ContainerStatus?: { ContainerID: string } };
  NetworksAttachments: unknown[];
  Spec?: { ContainerSpec: { Image: string; Healthcheck?: unknown } };
}

/** The task with the spec the managers list: its image, and the spec's own healthcheck if any. */
function specced(task: RawTask, image: string, healthcheck?: unknown): RawTask {
  return { ...task, Spec: { ContainerSpec: { Image: image, ...(healthcheck ? { Healthcheck: healthcheck } : {}) } } };
}

function rawTask(taskId: string, state: string, n: number, nodeId = NODE, containerKnown = true): RawTask {
  return {
    ID: taskId,
    ServiceID: SERVICE,
    NodeID: nodeId,
    DesiredState: 'running',
    Status: { State: state, ...(containerKnown ? { ContainerStatus: { ContainerID: container(n) } } : {}) },
    NetworksAttachments: [{ Network: { ID: 'net', Spec: { Name: 'edge' } }, Addresses: [`10.0.0.${n}/24`] }],
  };
}

/** The managers' view, which the test moves by hand (it lags the containers, as under churn). */
class ScriptedDocker {
  tasks: RawTask[] = [];
  containers = new Map<string, unknown>();
  /** Inspects answer at once, from the container as it is when asked, but resolve when this does. */
  inspectsArrive: Promise<void> = Promise.resolve();
  /** Task lists too: the answer is the view when asked, delivered when this resolves. */
  listsArrive: Promise<void> = Promise.resolve();
  /** And one task's record (GET /tasks/{id}), whatever its desired state. */
  taskRecordsArrive: Promise<void> = Promise.resolve();
  /** The events stream the next getEvents answers with (replace it to lose the current one). */
  events = new PassThrough();
  /** The service was removed: service lists no longer show it. */
  serviceGone = false;
  readonly api = {
    listServices: () =>
      Promise.resolve(
        this.serviceGone
          ? []
          : [
              {
                ID: SERVICE,
                Spec: {
                  Name: 'web',
                  Labels: { 'cloud.obiente.deployment_id': 'dep' },
                  Mode: { Replicated: { Replicas: 2 } },
                  TaskTemplate: { Networks: [{ Target: 'edge' }] },
                },
              },
            ],
      ),
    listTasks: () => {
      const answer = this.tasks.filter((t) => t.DesiredState === 'running').map((t) => structuredClone(t));
      return this.listsArrive.then(() => answer);
    },
    listNodes: () => Promise.resolve([{ ID: NODE, Status: { Addr: '10.1.0.1', State: 'ready' } }]),
    getService: () => {
      throw new Error('not used');
    },
    getEvents: () => Promise.resolve(this.events),
    getTask: (taskId: string) => ({
      inspect: () => {
        const answer = this.tasks.find((t) => t.ID === taskId);
        const copy = answer === undefined ? undefined : structuredClone(answer);
        return this.taskRecordsArrive.then(() => copy ?? Promise.reject(new Error('no such task')));
      },
    }),
    getContainer: (containerId: string) => ({
      inspect: () => {
        const answer = this.containers.get(containerId);
        return this.inspectsArrive.then(() => answer ?? Promise.reject(new Error('no such container')));
      },
    }),
  } as unknown as DockerApi;

  /** A container of a task on this node, running (healthy when `health`), as inspect shows it. */
  runs(taskId: string, n: number, health?: string, stopSignal?: string): void {
    this.containers.set(container(n), {
      Id: container(n),
      Config: {
        ...(stopSignal ? { StopSignal: stopSignal } : {}),
        Labels: {
          'com.docker.swarm.task.id': taskId,
          'com.docker.swarm.service.id': SERVICE,
          'com.docker.swarm.node.id': NODE,
        },
      },
      State: { Running: true, ...(health ? { Health: { Status: health } } : {}) },
      NetworkSettings: { Networks: { edge: { NetworkID: 'net', IPAddress: `10.0.0.${n}` } } },
    });
  }

  /** The event of a container of this node, with the node label every swarm container carries. */
  emitHere(action: string, taskId: string, n: number, timeNano?: unknown): void {
    this.emit(action, taskId, n, { 'com.docker.swarm.node.id': NODE }, timeNano);
  }

  emit(action: string, taskId: string, n: number, extra: Record<string, string> = {}, timeNano?: unknown): void {
    const Attributes = { ...extra, 'com.docker.swarm.task.id': taskId, 'com.docker.swarm.service.id': SERVICE };
    this.events.write(
      `${JSON.stringify({ Type: 'container', Action: action, timeNano, Actor: { ID: container(n), Attributes } })}\n`,
    );
  }
}

const watchers: SwarmWatcher[] = [];
afterEach(async () => {
  await Promise.all(watchers.splice(0).map((w) => w.stop()));
});

async function started(docker: ScriptedDocker): Promise<SwarmWatcher> {
  const health = new HealthRegistry();
  health.register(DOCKER, { enabled: true });
  const watcher = new SwarmWatcher(
    { labelPrefix: 'cloud.obiente', resyncMs: 3_600_000, taskPollMs: 20, taskPollSlowMs: 20 },
    { docker: docker.api, log: pino({ level: 'silent' }), health },
  );
  watchers.push(watcher);
  watcher.start();
  await until(() => watcher.isSynced());
  return watcher;
}

async function until(done: () => boolean, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const states = (watcher: SwarmWatcher) =>
  (watcher.topology().tasks.get(SERVICE) ?? []).map((t) => `${t.id.slice(0, 2)}:${t.state}`).sort();

describe('SwarmWatcher start hints', () => {
  it('publishes local tasks once they serve, and keeps each through lists that still say starting', async () => {
    const docker = new ScriptedDocker();
    docker.tasks = [rawTask(id('a'), 'starting', 1), rawTask(id('b'), 'starting', 2)];
    const watcher = await started(docker);
    expect(states(watcher)).toEqual(['aa:starting', 'bb:starting']);

    // b has a healthcheck and is still starting: its start event publishes nothing.
    docker.runs(id('a'), 1);
    docker.runs(id('b'), 2, 'starting');
    docker.emit('start', id('a'), 1);
    docker.emit('start', id('b'), 2);
    await until(() => states(watcher).includes('aa:running'));
    await pause(100); // several polls, every one still saying starting
    expect(states(watcher)).toEqual(['aa:running', 'bb:starting']);

    // b turns healthy: published too, and a second hint does not end the first.
    docker.runs(id('b'), 2, 'healthy');
    docker.emit('health_status: healthy', id('b'), 2);
    await until(() => states(watcher).includes('bb:running'));
    await pause(100);
    expect(states(watcher)).toEqual(['aa:running', 'bb:running']);
    expect(watcher.stats().startHints).toMatchObject({ recorded: 2, pending: 2 });

    // The managers agree: the hints end. a is then told to stop: the list alone decides.
    docker.tasks = [rawTask(id('a'), 'running', 1), rawTask(id('b'), 'running', 2)];
    await until(() => watcher.stats().startHints.pending === 0);
    docker.tasks[0]!.DesiredState = 'shutdown';
    docker.emit('kill', id('a'), 1);
    await until(() => states(watcher).join() === 'bb:running');
  });

  it('ends local hints when the events stream is lost: a death could go unseen until it is back', async () => {
    const docker = new ScriptedDocker();
    docker.tasks = [rawTask(id('a'), 'starting', 1)];
    const watcher = await started(docker);
    docker.runs(id('a'), 1);
    docker.emit('start', id('a'), 1);
    await until(() => states(watcher).includes('aa:running'));

    // The stream drops; the reconnect's reconcile gets a list still saying starting.
    const lost = docker.events;
    docker.events = new PassThrough();
    lost.destroy();
    await until(() => watcher.stats().reconnects === 1 && watcher.stats().reconciles === 2);
    expect(states(watcher)).toEqual(['aa:starting']);
    expect(watcher.stats().startHints).toMatchObject({ recorded: 1, pending: 0 });
  });

  it('never brings back a task that a list asked after its start omits, when the inspect arrives late', async () => {
    const docker = new ScriptedDocker();
    docker.tasks = [rawTask(id('a'), 'starting', 1), rawTask(id('b'), 'starting', 2)];
    const watcher = await started(docker);
    let arrive!: () => void;
    docker.inspectsArrive = new Promise((resolve) => (arrive = resolve));

    // Both start; their inspects answer "running" now but arrive only after the managers have
    // moved on: a was told to stop (scaled down), b is listed running.
    docker.runs(id('a'), 1);
    docker.runs(id('b'), 2);
    docker.emit('start', id('a'), 1);
    docker.emit('start', id('b'), 2);
    await pause(20);
    docker.tasks[0]!.DesiredState = 'shutdown';
    docker.tasks[1]!.Status.State = 'running';
    await until(() => states(watcher).join() === 'bb:running');
    arrive();
    await pause(100);
    expect(states(watcher)).toEqual(['bb:running']);
    expect(watcher.stats().startHints).toMatchObject({ recorded: 0, pending: 0 });
  });

  it("promotes another node's announced task only as the task list shows it there, and never adds one", async () => {
    const docker = new ScriptedDocker();
    docker.tasks = [rawTask(id('a'), 'starting', 1, OTHER_NODE), rawTask(id('b'), 'preparing', 2, OTHER_NODE, false)];
    const watcher = await started(docker);
    const claim = (taskId: string, n: number, nodeId = OTHER_NODE) => ({
      taskId,
      serviceId: SERVICE,
      nodeId,
      containerId: container(n),
    });
    // Forged: the wrong node, the wrong container, a task nobody lists, a service not watched.
    watcher.announce(claim(id('a'), 1, NODE), performance.now());
    watcher.announce(claim(id('a'), 9), performance.now());
    watcher.announce(claim(id('z'), 7), performance.now());
    watcher.announce({ ...claim(id('a'), 1), serviceId: id('x') }, performance.now());
    await pause(100);
    expect(states(watcher)).toEqual(['aa:starting', 'bb:preparing']);
    expect(
      watcher
        .topology()
        .tasks.get(SERVICE)!
        .map((t) => t.addresses[0]!.ip),
    ).toEqual(['10.0.0.1', '10.0.0.2']);

    // The real one: at once, with the managers' address; b's container is not listed yet: its own.
    watcher.announce(claim(id('a'), 1), performance.now());
    watcher.announce(claim(id('b'), 2), performance.now());
    expect(states(watcher)).toEqual(['aa:running', 'bb:running']);
    await pause(100);
    expect(states(watcher)).toEqual(['aa:running', 'bb:running']);
    expect(watcher.stats().startHints).toMatchObject({ announced: 5, announcementsUsed: 2 });
  });
});

describe('SwarmWatcher start hints without an inspect', () => {
  const inspects = (watcher: SwarmWatcher) => watcher.stats().apiCalls.containers ?? 0;

  it('publishes a start from the list held once one inspect showed that tasks of its image have no healthcheck', async () => {
    const docker = new ScriptedDocker();
    docker.tasks = [1, 2, 3, 4].map((n) => specced(rawTask(id(String.fromCharCode(96 + n)), 'starting', n), 'app:1'));
    const watcher = await started(docker);

    // The first start of the image: one inspect, which serves and teaches.
    docker.runs(id('a'), 1);
    docker.emitHere('start', id('a'), 1);
    await until(() => states(watcher).includes('aa:running'));
    expect(inspects(watcher)).toBe(1);

    // The next: published at once from the list's own fields (no container to inspect is needed).
    docker.emitHere('start', id('b'), 2);
    expect(states(watcher)).toContain('bb:running');
    expect(
      watcher
        .topology()
        .tasks.get(SERVICE)!
        .find((t) => t.id === id('b')),
    ).toMatchObject({
      containerId: container(2),
      addresses: [{ ip: '10.0.0.2' }],
    });

    // An event that does not name this node, or names another container than the list: inspected,
    // and no container answers, so nothing changes.
    docker.emit('start', id('c'), 3);
    docker.emitHere('start', id('d'), 9);
    await until(() => inspects(watcher) === 3);
    await pause(50);
    expect(states(watcher)).toEqual(['aa:running', 'bb:running', 'cc:starting', 'dd:starting']);
    expect(watcher.stats().startHints).toMatchObject({ recorded: 2, fromList: 1 });
  });

  it("tells its start listeners of each start it published, with the daemon's delivery time, before the topology listeners", async () => {
    const docker = new ScriptedDocker();
    docker.tasks = [1, 2, 3].map((n) => specced(rawTask(id(String.fromCharCode(96 + n)), 'starting', n), 'app:1'));
    const watcher = await started(docker);
    const heard: string[] = [];
    const starts: HintedStart[] = [];
    watcher.onStart((start) => {
      heard.push('start');
      starts.push(start);
    });
    watcher.onChange(() => heard.push('topology'));

    // Through an inspect (the first of its image), with an event 250 ms old by the daemon's clock.
    docker.runs(id('a'), 1);
    docker.emitHere('start', id('a'), 1, (Date.now() - 250) * 1e6);
    await until(() => starts.length === 1);
    expect(heard.slice(0, 2)).toEqual(['start', 'topology']);
    expect(starts[0]!.deliveryMs).toBeGreaterThanOrEqual(249);
    expect(starts[0]!.deliveryMs).toBeLessThan(2_000);
    expect(starts[0]!.hintedAt).toBeGreaterThan(starts[0]!.seenAt);

    // From the list held, at once; a timestamp that is not one gives no delivery figure.
    docker.emitHere('start', id('b'), 2, 'soon');
    docker.emitHere('start', id('c'), 3, Number.MAX_VALUE);
    await until(() => starts.length === 3);
    expect(starts.slice(1).map((s) => s.deliveryMs)).toEqual([undefined, undefined]);

    // A start that publishes nothing (already hinted) tells nothing.
    docker.emitHere('start', id('b'), 2);
    await pause(30);
    expect(starts).toHaveLength(3);
  });

  it('waits for the healthy event of a task whose image has a healthcheck, and publishes that with no inspect', async () => {
    const docker = new ScriptedDocker();
    const check = { Test: ['CMD', 'true'], Interval: 1_000_000_000 };
    docker.tasks = [1, 2].map((n) => specced(rawTask(id(String.fromCharCode(96 + n)), 'starting', n), 'app:2', check));
    const watcher = await started(docker);

    docker.runs(id('a'), 1, 'starting');
    docker.emitHere('start', id('a'), 1);
    await until(() => inspects(watcher) === 1);
    await pause(20); // the inspect's answer arrives
    docker.emitHere('start', id('b'), 2);
    await pause(50);
    expect(states(watcher)).toEqual(['aa:starting', 'bb:starting']);

    docker.emitHere('health_status: healthy', id('b'), 2);
    expect(states(watcher)).toEqual(['aa:starting', 'bb:running']);
    expect(inspects(watcher)).toBe(1);

    // A task the list already shows running needs nothing, not even an inspect.
    docker.tasks[0]!.Status.State = 'running';
    await until(() => states(watcher).includes('aa:running'));
    docker.emitHere('health_status: healthy', id('a'), 1);
    await pause(50);
    expect(inspects(watcher)).toBe(1);
    expect(watcher.stats().startHints).toMatchObject({ recorded: 1, fromList: 1 });
  });
});

/** A promise and its resolve, to hold answers back. */
function held(): { promise: Promise<void>; release: () => void } {
  let release!: () => void;
  const promise = new Promise<void>((resolve) => (release = resolve));
  return { promise, release };
}

describe("SwarmWatcher start hints from the task's own record", () => {
  const records = (watcher: SwarmWatcher) => watcher.stats().apiCalls.task ?? 0;

  /** A synced watcher whose list held shows no task: later lists and inspects wait until released. */
  async function lagging(docker: ScriptedDocker) {
    const watcher = await started(docker);
    const lists = held();
    const inspects = held();
    docker.listsArrive = lists.promise;
    docker.inspectsArrive = inspects.promise;
    return {
      watcher,
      release: () => {
        lists.release();
        inspects.release();
      },
    };
  }

  it('publishes a start the list held does not show from the record of that one task, before its inspect or a poll answers', async () => {
    const docker = new ScriptedDocker();
    const { watcher, release } = await lagging(docker);
    docker.tasks = [
      specced(rawTask(id('a'), 'running', 1), 'app:1'),
      specced(rawTask(id('b'), 'starting', 2), 'app:1'),
    ];
    docker.runs(id('a'), 1);
    docker.runs(id('b'), 2);

    // a: the record shows it running here with this container: published with its addresses.
    docker.emitHere('start', id('a'), 1);
    await until(() => states(watcher).includes('aa:running'));
    expect(watcher.topology().tasks.get(SERVICE)).toEqual([
      expect.objectContaining({
        id: id('a'),
        containerId: container(1),
        addresses: [expect.objectContaining({ ip: '10.0.0.1' })],
      }),
    ]);
    expect(watcher.stats().startHints).toMatchObject({ recorded: 1, fromTask: 1 });

    // b: the record still says starting, and whether its image has a healthcheck is not known yet:
    // the record alone does not publish it; the inspect does, once it answers.
    docker.emitHere('start', id('b'), 2);
    await until(() => records(watcher) === 2);
    await pause(30);
    expect(states(watcher)).toEqual(['aa:running']);
    release();
    await until(() => states(watcher).includes('bb:running'));
    expect(watcher.stats().startHints).toMatchObject({ recorded: 2, fromTask: 1 });
  });

  it('publishes nothing from a record of a task told to stop, on another node, with another container or without addresses', async () => {
    const docker = new ScriptedDocker();
    const { watcher, release } = await lagging(docker);
    const stopping = rawTask(id('a'), 'running', 1);
    stopping.DesiredState = 'shutdown';
    const noAddresses = rawTask(id('d'), 'running', 4);
    noAddresses.NetworksAttachments = [];
    docker.tasks = [stopping, rawTask(id('b'), 'running', 2, OTHER_NODE), rawTask(id('c'), 'running', 9), noAddresses];

    docker.emitHere('start', id('a'), 1);
    docker.emitHere('start', id('b'), 2);
    docker.emitHere('start', id('c'), 3);
    docker.emitHere('start', id('d'), 4);
    await until(() => records(watcher) === 4);
    await pause(50);
    expect(states(watcher)).toEqual([]);
    expect(watcher.stats().startHints).toMatchObject({ recorded: 0, fromTask: 0 });
    release();
  });

  it("makes no call for an event whose ids are not the daemon's forms, and polls the service instead", async () => {
    const docker = new ScriptedDocker();
    const watcher = await started(docker);
    const listsBefore = watcher.stats().apiCalls.tasks ?? 0;
    docker.tasks = [specced(rawTask(id('a'), 'running', 1), 'app:1')];
    docker.emitHere('start', '../containers/x/json', 1);
    docker.emitHere('start', id('A'), 1);
    docker.emitHere('kill', `${id('a')}\u0000`, 1, undefined);
    await until(() => states(watcher).includes('aa:running'));
    expect([watcher.stats().apiCalls.containers, watcher.stats().apiCalls.task]).toEqual([undefined, undefined]);
    expect(watcher.stats().apiCalls.tasks).toBeGreaterThan(listsBefore);
    expect(watcher.stats().startHints).toMatchObject({ recorded: 0 });
  });

  it('hints nothing from an answer that arrives after the container died', async () => {
    const docker = new ScriptedDocker();
    const { watcher, release } = await lagging(docker);
    const records = held();
    docker.taskRecordsArrive = records.promise;
    docker.tasks = [specced(rawTask(id('a'), 'running', 1), 'app:1')];
    docker.runs(id('a'), 1);

    // Both the record and the inspect were asked while the container ran; it dies before they arrive.
    docker.emitHere('start', id('a'), 1);
    await pause(20);
    docker.emitHere('die', id('a'), 1);
    docker.tasks[0]!.Status.State = 'failed';
    docker.tasks[0]!.DesiredState = 'shutdown';
    await pause(20);
    records.release();
    release();
    // Polls asked before the death still show it running (the managers' word, not a hint's); the
    // ones after it do not, and no hint keeps it.
    await until(() => watcher.stats().startHints.refusedEnded === 2);
    await until(() => states(watcher).length === 0);
    await pause(50);
    expect(states(watcher)).toEqual([]);
    expect(watcher.stats().startHints).toMatchObject({ recorded: 0, refusedEnded: 2 });
  });
});

describe('SwarmWatcher stop hints', () => {
  it("takes a task out at its container's stop signal, and a list asked before that does not bring it back", async () => {
    const docker = new ScriptedDocker();
    docker.tasks = [rawTask(id('a'), 'running', 1), rawTask(id('b'), 'running', 2)];
    const watcher = await started(docker);
    let arrive!: () => void;
    docker.listsArrive = new Promise((resolve) => (arrive = resolve));
    // Another container event: a poll is asked now, while the managers still want a running.
    docker.emit('die', id('z'), 9);
    await pause(50);
    // Swarm stops a: desired state first, then the agent's SIGTERM. The poll has not answered.
    docker.tasks[0]!.DesiredState = 'shutdown';
    const seen: string[] = [];
    watcher.onChange(() => seen.push(states(watcher).join()));
    docker.emit('kill', id('a'), 1, { signal: '15' });
    await until(() => states(watcher).join() === 'bb:running');
    arrive();
    await until(() => watcher.stats().stopHints.pending === 0);
    // Out with the signal, and never back: not with the list asked before it, nor after.
    expect(seen[0]).toBe('bb:running');
    expect(seen.filter((topology) => topology.includes('aa'))).toEqual([]);
    expect(states(watcher)).toEqual(['bb:running']);
    expect(watcher.stats().stopHints).toMatchObject({ recorded: 1, confirmed: 1, refuted: 0 });
  });

  it("leaves a task serving on other signals, honours the container's own stop signal, and yields to the managers", async () => {
    const docker = new ScriptedDocker();
    docker.tasks = [rawTask(id('a'), 'running', 1), rawTask(id('b'), 'running', 2)];
    const watcher = await started(docker);
    docker.runs(id('a'), 1);
    docker.runs(id('b'), 2, undefined, 'SIGQUIT');
    // A reload signal, a malformed one, and no signal at all: nothing changes.
    docker.emit('kill', id('a'), 1, { signal: '1' });
    docker.emit('kill', id('a'), 1, { signal: 'TERM\u200b' });
    docker.emit('kill', id('a'), 1);
    await pause(100);
    expect(states(watcher)).toEqual(['aa:running', 'bb:running']);
    expect(watcher.stats().stopHints.recorded).toBe(0);

    // b stops on SIGQUIT (its image's STOPSIGNAL): out at once.
    docker.tasks[1]!.DesiredState = 'shutdown';
    docker.emit('kill', id('b'), 2, { signal: '3' });
    await until(() => states(watcher).join() === 'aa:running');

    // SIGTERM sent by hand to a process that ignores it: out, until a list asked since says the
    // managers still want it running.
    docker.emit('kill', id('a'), 1, { signal: '15' });
    await until(() => watcher.stats().stopHints.refuted === 1);
    expect(states(watcher)).toEqual(['aa:running']);
    expect(watcher.stats().stopHints).toMatchObject({ recorded: 2, confirmed: 1, refuted: 1, pending: 0 });
  });
});

describe('SwarmWatcher reconcile', () => {
  /** A pending promise and its resolve. */
  const gate = () => {
    let open!: () => void;
    const promise = new Promise<void>((resolve) => (open = resolve));
    return { promise, open };
  };
  const serviceEvent = (docker: ScriptedDocker, action: string) =>
    docker.events.write(`${JSON.stringify({ Type: 'service', Action: action, Actor: { ID: SERVICE } })}\n`);

  it('does not put back an older task list over one a poll answered while it waited', async () => {
    const docker = new ScriptedDocker();
    docker.tasks = [rawTask(id('a'), 'starting', 1), rawTask(id('b'), 'running', 2)];
    const watcher = await started(docker);

    // The reconcile asks while a is starting; its answer comes late.
    const late = gate();
    docker.listsArrive = late.promise;
    const reconciled = watcher.reconcile(performance.now());
    docker.listsArrive = Promise.resolve();
    // a turns running, and a service event's poll says so first.
    docker.tasks[0]!.Status.State = 'running';
    serviceEvent(docker, 'update');
    await until(() => states(watcher).includes('aa:running'));

    late.open();
    await reconciled;
    expect(states(watcher)).toEqual(['aa:running', 'bb:running']);
  });

  it('does not put back its answer over that of a reconcile asked after it and answered first', async () => {
    const docker = new ScriptedDocker();
    docker.tasks = [rawTask(id('a'), 'starting', 1)];
    const watcher = await started(docker);

    const late = gate();
    docker.listsArrive = late.promise;
    const older = watcher.reconcile(performance.now());
    docker.listsArrive = Promise.resolve();
    docker.tasks[0]!.Status.State = 'running';
    await watcher.reconcile(performance.now());
    expect(states(watcher)).toEqual(['aa:running']);

    late.open();
    await older;
    expect(states(watcher)).toEqual(['aa:running']);
  });

  it('does not bring back a service removed while it waited', async () => {
    const docker = new ScriptedDocker();
    docker.tasks = [rawTask(id('a'), 'running', 1)];
    const watcher = await started(docker);

    const late = gate();
    docker.listsArrive = late.promise;
    const reconciled = watcher.reconcile(performance.now());
    docker.serviceGone = true;
    docker.tasks = [];
    serviceEvent(docker, 'remove');
    await until(() => !watcher.topology().services.has(SERVICE));

    late.open();
    await reconciled;
    expect(watcher.topology().services.has(SERVICE)).toBe(false);
    expect(watcher.topology().tasks.has(SERVICE)).toBe(false);
  });

  it('keeps its own newer lists over a poll asked before it and answered after', async () => {
    const docker = new ScriptedDocker();
    docker.tasks = [rawTask(id('a'), 'starting', 1)];
    const watcher = await started(docker);

    // A poll asks while a is starting and answers late; a reconcile asked after it answers first.
    const late = gate();
    docker.listsArrive = late.promise;
    serviceEvent(docker, 'update');
    await until(() => (watcher.stats().apiCalls.tasks ?? 0) >= 2);
    docker.listsArrive = Promise.resolve();
    docker.tasks[0]!.Status.State = 'running';
    await watcher.reconcile(performance.now());
    expect(states(watcher)).toEqual(['aa:running']);
    const seen: string[] = [];
    watcher.onChange(() => seen.push(states(watcher).join()));

    late.open();
    await pause(60);
    expect(states(watcher)).toEqual(['aa:running']);
    // Not even for a moment.
    expect(seen.filter((tasks) => tasks !== 'aa:running')).toEqual([]);
  });
});
