import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConvergencePoller } from './convergence-poller.js';
import type { SwarmTask } from './topology.js';

const log = pino({ level: 'silent' });
const task = (serviceId: string, n: number, state: string): SwarmTask => ({
  id: `${serviceId}-t${n}`,
  serviceId,
  nodeId: 'n1',
  state,
  desiredState: 'running',
  containerId: `c-${serviceId}-${n}`,
  addresses: [],
});

/** A swarm whose tasks the test sets, and a poller over it that records its calls. */
function setup(options: { maxFiltered?: number } = {}) {
  const swarm = new Map<string, SwarmTask[]>();
  const topology = new Map<string, readonly SwarmTask[]>();
  const replicas = new Map<string, number>();
  const calls: Array<readonly string[] | undefined> = [];
  const callTimes: number[] = [];
  const applied: string[][] = [];
  const poller = new ConvergencePoller(
    { fastMs: 200, slowMs: 2_000, deadlineMs: 120_000, maxFiltered: options.maxFiltered ?? 50 },
    {
      listTasks: (ids) => {
        calls.push(ids);
        callTimes.push(Date.now());
        return Promise.resolve(
          [...swarm.entries()].filter(([id]) => ids === undefined || ids.includes(id)).flatMap(([, t]) => t),
        );
      },
      current: (id) => topology.get(id),
      converged: (id, tasks) => tasks.length === replicas.get(id) && tasks.every((t) => t.state === 'running'),
      isKnown: (id) => replicas.has(id),
      apply: (changes) => {
        for (const [id, tasks] of changes) topology.set(id, tasks);
        applied.push([...changes.keys()]);
      },
      log,
      now: () => Date.now(),
    },
  );
  const service = (id: string, count: number, state: string) => {
    replicas.set(id, count);
    swarm.set(
      id,
      Array.from({ length: count }, (_, n) => task(id, n, state)),
    );
  };
  return { poller, swarm, calls, callTimes, applied, service };
}

describe('ConvergencePoller', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('polls every converging service with one call per tick, at most one call per fast interval', async () => {
    const { poller, calls, callTimes, service } = setup();
    for (let i = 0; i < 40; i++) {
      service(`s${i}`, 2, 'starting');
      poller.start(`s${i}`, 0);
    }
    await vi.advanceTimersByTimeAsync(2_000);
    // 40 services updating together: one call per tick, not 40 per tick.
    expect(calls[0]).toHaveLength(40);
    expect(calls.length).toBeLessThanOrEqual(11);
    for (let i = 1; i < callTimes.length; i++) expect(callTimes[i]! - callTimes[i - 1]!).toBeGreaterThanOrEqual(200);
    poller.stop();
  });

  it('asks for every running task in one call when more services are due than a filter should hold', async () => {
    const { poller, calls, service } = setup({ maxFiltered: 10 });
    for (let i = 0; i < 30; i++) {
      service(`s${i}`, 1, 'starting');
      poller.start(`s${i}`, 0);
    }
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toEqual([undefined]);
    poller.stop();
  });

  it('backs off while tasks stay the same without converging, and returns to the fast cadence on a change', async () => {
    const { poller, calls, swarm, service } = setup();
    service('stuck', 1, 'preparing');
    poller.start('stuck', 0);
    await vi.advanceTimersByTimeAsync(10_000);
    // Fixed 200 ms polling would have made 50 calls; a second at 200 ms, then doubling to 2 s, makes 13.
    expect(calls.length).toBeLessThanOrEqual(14);
    const before = calls.length;
    swarm.set('stuck', [task('stuck', 0, 'starting')]);
    await vi.advanceTimersByTimeAsync(2_000);
    swarm.set('stuck', [task('stuck', 0, 'starting'), task('stuck', 1, 'starting')]);
    await vi.advanceTimersByTimeAsync(600);
    // Seen within the slow interval, then polled at the fast cadence again.
    expect(calls.length - before).toBeGreaterThanOrEqual(3);
    poller.stop();
  });

  it('applies the changes of a tick together and lets converged services go', async () => {
    const { poller, applied, service } = setup();
    service('a', 1, 'running');
    service('b', 1, 'starting');
    poller.start('a', 0);
    poller.start('b', 0);
    await vi.advanceTimersByTimeAsync(0);
    expect(applied).toEqual([['a', 'b']]);
    expect(poller.size).toBe(1);
    service('b', 1, 'running');
    await vi.advanceTimersByTimeAsync(500);
    expect(poller.size).toBe(0);
  });

  it('drops a service removed from the topology', async () => {
    const { poller, calls } = setup();
    poller.start('gone', 0);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(poller.size).toBe(0);
    expect(calls).toHaveLength(1);
  });

  it('polls again at the next tick when an event named the service while its poll was in flight', async () => {
    const swarm = new Map<string, SwarmTask[]>([['s', [task('s', 0, 'preparing')]]]);
    const calls: number[] = [];
    let release: () => void = () => undefined;
    const poller = new ConvergencePoller(
      { fastMs: 200, slowMs: 2_000, deadlineMs: 120_000, maxFiltered: 50 },
      {
        listTasks: async () => {
          calls.push(Date.now());
          const answer = swarm.get('s')!;
          await new Promise<void>((resolve) => (release = resolve));
          return answer;
        },
        current: () => [task('s', 0, 'preparing')],
        converged: (_id, tasks) => tasks.every((t) => t.state === 'running'),
        isKnown: () => true,
        apply: () => undefined,
        log,
        now: () => Date.now(),
      },
    );
    poller.start('s', 0);
    await vi.advanceTimersByTimeAsync(0);
    // The task starts while the poll is in flight: the event names the service again.
    swarm.set('s', [task('s', 0, 'running')]);
    poller.start('s', Date.now());
    release();
    await vi.advanceTimersByTimeAsync(200);
    expect(calls).toHaveLength(2);
    release();
    await vi.advanceTimersByTimeAsync(0);
    expect(poller.size).toBe(0);
  });
});
