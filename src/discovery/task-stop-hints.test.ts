import { describe, expect, it } from 'vitest';
import { STOP_HINT_TTL_MS, TaskStopHints } from './task-stop-hints.js';
import { killStops, signalNumber, type SwarmTask } from './topology.js';

const task = (id: string): SwarmTask => ({
  id,
  serviceId: 'svc',
  nodeId: 'node-1',
  state: 'running',
  desiredState: 'running',
  containerId: `c-${id}`,
  addresses: [{ networkId: 'net', networkName: 'edge', ip: '10.0.1.2' }],
});

const ids = (tasks: readonly SwarmTask[]) => tasks.map((t) => t.id).sort();

describe('TaskStopHints', () => {
  it('hides a stopping task from lists asked before its signal, and ends when a list omits it', () => {
    const hints = new TaskStopHints(() => 1_500);
    expect(hints.record('svc', 't1', 1_000)).toBe(true);
    expect(hints.record('svc', 't1', 1_100)).toBe(false);
    expect(ids(hints.applyTo('svc', [task('t0'), task('t1')]))).toEqual(['t0']);
    // Asked before the signal: it still shows the task running, and is not believed.
    expect(ids(hints.merge('svc', [task('t0'), task('t1')], 900))).toEqual(['t0']);
    expect(hints.pending('svc')).toBe(true);
    // The managers agree: desired state no longer running, so not listed.
    expect(ids(hints.merge('svc', [task('t0')], 1_200))).toEqual(['t0']);
    expect(hints.pending('svc')).toBe(false);
    expect(hints.stats()).toMatchObject({ recorded: 1, confirmed: 1, refuted: 0, pending: 0 });
  });

  it('gives a task back when a list asked after the signal still shows it desired running', () => {
    // `docker kill -s TERM` by hand to a process that ignores it: Swarm never asked for a stop.
    const hints = new TaskStopHints(() => 1_500);
    hints.record('svc', 't1', 1_000);
    expect(ids(hints.merge('svc', [task('t1')], 1_200))).toEqual(['t1']);
    expect(hints.pending('svc')).toBe(false);
    expect(hints.stats()).toMatchObject({ refuted: 1, pending: 0 });
  });

  it('lets the managers decide once a hint outlives its TTL, and forgets removed services', () => {
    let now = 1_000;
    const hints = new TaskStopHints(() => now);
    hints.record('svc', 't1', 1_000);
    now = 1_000 + STOP_HINT_TTL_MS + 1;
    expect(ids(hints.merge('svc', [task('t1')], 900))).toEqual(['t1']);
    expect(hints.stats()).toMatchObject({ expired: 1, pending: 0 });
    hints.record('svc', 't2', now);
    hints.forgetService('svc');
    expect([...hints.services()]).toEqual([]);
  });
});

describe('stop signals', () => {
  it("reads Docker's signal spellings, and nothing else", () => {
    expect(['15', 'SIGTERM', 'term', 'sigTerm', 'QUIT', '9'].map(signalNumber)).toEqual([15, 15, 15, 15, 3, 9]);
    const refused = ['0', '65', '015 ', 'SIGTERM\u200b', 'ＴＥＲＭ', '__proto__', 'constructor', 'SIG', '', 15, null];
    expect(refused.map(signalNumber)).toEqual(refused.map(() => undefined));
  });

  it('counts SIGTERM, SIGKILL and the container’s own stop signal as a stop, not a reload', () => {
    expect([killStops(15), killStops(9), killStops(3, 3)]).toEqual([true, true, true]);
    expect([killStops(1), killStops(10), killStops(3), killStops(3, 15)]).toEqual([false, false, false, false]);
  });
});
