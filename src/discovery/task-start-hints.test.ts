import { describe, expect, it } from 'vitest';
import {
  CONFIRMED_KEEP_MS,
  HINT_TTL_MS,
  LOCAL_HINT_TTL_MS,
  ENDED_KEEP_MS,
  TaskStartHints,
} from './task-start-hints.js';
import { parseServingContainer, type SwarmTask } from './topology.js';

const task = (id: string, state: string, ip = '10.0.1.2'): SwarmTask => ({
  id,
  serviceId: 'svc',
  nodeId: 'node-1',
  state,
  desiredState: 'running',
  containerId: `c-${id}`,
  addresses: [{ networkId: 'net', networkName: 'edge', ip }],
});

const states = (tasks: readonly SwarmTask[]) => tasks.map((t) => `${t.id}:${t.state}`).sort();

describe('TaskStartHints', () => {
  it('keeps a started task running against a list that lags: before running, or omitting it when asked earlier', () => {
    let now = 1_000;
    const hints = new TaskStartHints(() => now);
    expect(hints.record(task('t1', 'running'), 1_000)).toBe(true);
    expect(hints.record(task('t1', 'running'), 1_001)).toBe(false);
    expect(hints.pending('svc')).toBe(true);

    now = 1_500;
    // Asked before the start was seen, answered after: it may not know the task yet.
    expect(states(hints.merge('svc', [task('t0', 'running')], 900))).toEqual(['t0:running', 't1:running']);
    // The agent has not reported it running yet: the list's addresses, the hint's state.
    const lagging = hints.merge('svc', [task('t1', 'starting', '10.0.1.9')], 1_200);
    expect(lagging).toEqual([{ ...task('t1', 'running', '10.0.1.9') }]);
    // Confirmed: nothing is pending any more.
    expect(states(hints.merge('svc', [task('t1', 'running')], 1_300))).toEqual(['t1:running']);
    expect(hints.pending('svc')).toBe(false);
    // A list answered after that but asked earlier still says starting: states only move forward,
    // so it is stale, and the task stays running.
    expect(states(hints.merge('svc', [task('t1', 'starting')], 1_250))).toEqual(['t1:running']);
    expect(hints.stats()).toMatchObject({ recorded: 1, confirmed: 1, applied: 3, pending: 0 });
    // Long after the confirmation, the list decides.
    now = 1_500 + CONFIRMED_KEEP_MS + 1;
    expect(states(hints.merge('svc', [task('t1', 'starting')], now - 10))).toEqual(['t1:starting']);
    expect([...hints.services()]).toEqual([]);
  });

  it('lets a list asked after the start remove the task (told to stop), and a dead container end its hint', () => {
    const hints = new TaskStartHints(() => 2_000);
    hints.record(task('t1', 'running'), 1_000);
    expect(hints.merge('svc', [], 1_100)).toEqual([]);
    expect(hints.pending('svc')).toBe(false);

    hints.record(task('t2', 'running'), 1_000);
    hints.drop('svc', 't2');
    expect(hints.merge('svc', [task('t2', 'starting')], 500)).toEqual([task('t2', 'starting')]);
    // A state past running (failed, complete) ends it too, and a stale list after it adds nothing.
    hints.record(task('t3', 'running'), 1_000);
    expect(states(hints.merge('svc', [task('t3', 'failed')], 500))).toEqual(['t3:failed']);
    expect(states(hints.merge('svc', [task('t3', 'starting')], 400))).toEqual(['t3:starting']);
  });

  it('refuses a hint for a task whose container ended, from any source, until no answer can still be in flight', () => {
    let now = 1_000;
    const hints = new TaskStartHints(() => now);
    const latest = { tasks: [], askedAt: 0 };
    hints.record(task('t1', 'running'), 900);
    hints.ended('svc', 't1');
    hints.ended('svc', 't2');
    // Answers asked before the end and arriving after it: refused, whichever path they took.
    expect(hints.record(task('t1', 'running'), 900)).toBe(false);
    expect(hints.recordFromTask(task('t2', 'starting'), 950, latest)).toBe(false);
    expect(hints.recordListed(task('t2', 'starting'), 'c-t2', 950)).toBe(false);
    expect(hints.applyTo('svc', [])).toEqual([]);
    expect(hints.stats()).toMatchObject({ recorded: 1, fromTask: 0, refusedEnded: 3 });
    // A kill alone (a signal the container may survive) ends the hint but refuses nothing after it.
    hints.drop('svc', 't3');
    expect(hints.recordFromTask(task('t3', 'starting'), 990, latest)).toBe(true);
    expect(hints.stats()).toMatchObject({ recorded: 2, fromTask: 1 });
    // Past the keep, the task is forgotten (a task id is never reused; this only bounds memory).
    now = 1_000 + ENDED_KEEP_MS + 1;
    hints.ended('svc', 't9');
    expect(hints.record(task('t1', 'running'), now)).toBe(true);
  });

  it("hints a listed task from the list's own fields, only when the list lags and names no other container", () => {
    const hints = new TaskStartHints(() => 1_000);
    const listed = { ...task('t1', 'starting'), containerId: undefined };
    expect(hints.recordListed(task('t0', 'running'), 'c-t0', 1_000)).toBe(false);
    expect(hints.recordListed(task('t2', 'starting'), 'c-other', 1_000)).toBe(false);
    expect(hints.recordListed(listed, 'c-t1', 1_000)).toBe(true);
    expect(hints.recordListed(listed, 'c-t1', 1_001)).toBe(false);
    // As every hint: the list's fields, the hint's state.
    expect(hints.merge('svc', [listed], 900)).toEqual([{ ...listed, state: 'running' }]);
    expect(hints.stats()).toMatchObject({ recorded: 1, fromList: 1, pending: 1 });
  });

  it('keeps a local hint past 30 s while the list lags, and gives the managers the last word after LOCAL_HINT_TTL_MS', () => {
    let now = 0;
    const hints = new TaskStartHints(() => now);
    hints.record(task('t1', 'running'), 0);
    // Under churn the agent records `running` half a minute after the start: the task stays.
    now = HINT_TTL_MS + 1;
    expect(states(hints.merge('svc', [task('t1', 'starting')], now - 10))).toEqual(['t1:running']);
    now = LOCAL_HINT_TTL_MS + 1;
    expect(states(hints.merge('svc', [task('t1', 'starting')], now - 10))).toEqual(['t1:starting']);
    hints.record(task('t2', 'running'), now);
    now += LOCAL_HINT_TTL_MS + 1;
    expect(hints.merge('svc', [], -1)).toEqual([]);
    expect(hints.stats()).toMatchObject({ expired: 2, pending: 0 });
  });

  it("gives an announced task HINT_TTL_MS, and ends local hints only when this node's events stream is lost", () => {
    let now = 0;
    const hints = new TaskStartHints(() => now);
    const remote = { ...task('t9', 'starting'), nodeId: 'node-2', containerId: 'c-t9' };
    hints.announce({ taskId: 't9', serviceId: 'svc', nodeId: 'node-2', containerId: 'c-t9' }, 0);
    expect(states(hints.merge('svc', [remote], 0))).toEqual(['t9:running']);
    hints.record(task('t1', 'running'), 0);
    now = HINT_TTL_MS + 1;
    expect(states(hints.merge('svc', [remote, task('t1', 'starting')], now - 10))).toEqual([
      't1:running',
      't9:starting',
    ]);
    hints.record(task('t2', 'running'), now);
    hints.dropLocal();
    expect(hints.pending('svc')).toBe(false);
    expect(states(hints.merge('svc', [task('t1', 'starting')], now))).toEqual(['t1:starting']);
  });
});

describe('parseServingContainer', () => {
  const inspect = (state: Record<string, unknown>, labels: Record<string, unknown> = {}) => ({
    Id: 'abc',
    Config: {
      Labels: {
        'com.docker.swarm.task.id': 'task-1',
        'com.docker.swarm.service.id': 'svc',
        'com.docker.swarm.node.id': 'node-1',
        ...labels,
      },
    },
    State: state,
    NetworkSettings: {
      Networks: {
        edge: { NetworkID: 'n1', IPAddress: '10.0.1.7', GlobalIPv6Address: '' },
        ingress: { NetworkID: 'n2', IPAddress: '10.255.0.4' },
        host: { NetworkID: 'n3', IPAddress: '' },
        bad: { NetworkID: 'n4', IPAddress: '10.0.0.1/24; rm -rf' },
      },
    },
  });

  it('reads a running container as its task, with its addresses', () => {
    expect(parseServingContainer(inspect({ Running: true }))).toEqual({
      id: 'task-1',
      serviceId: 'svc',
      nodeId: 'node-1',
      state: 'running',
      desiredState: 'running',
      containerId: 'abc',
      addresses: [
        { networkId: 'n1', networkName: 'edge', ip: '10.0.1.7' },
        { networkId: 'n2', networkName: 'ingress', ip: '10.255.0.4' },
      ],
    });
    expect(parseServingContainer(inspect({ Running: true, Health: { Status: 'healthy' } }))?.id).toBe('task-1');
  });

  it('refuses a container that does not serve yet, has exited, or is no swarm task', () => {
    expect(parseServingContainer(inspect({ Running: true, Health: { Status: 'starting' } }))).toBeUndefined();
    expect(parseServingContainer(inspect({ Running: true, Health: { Status: 'unhealthy' } }))).toBeUndefined();
    expect(parseServingContainer(inspect({ Running: false }))).toBeUndefined();
    expect(parseServingContainer(inspect({ Running: 'true' }))).toBeUndefined();
    expect(parseServingContainer(inspect({ Running: true }, { 'com.docker.swarm.task.id': 7 }))).toBeUndefined();
    expect(parseServingContainer(null)).toBeUndefined();
    expect(parseServingContainer({ Config: { Labels: { __proto__: { x: 1 } } } })).toBeUndefined();
  });
});
