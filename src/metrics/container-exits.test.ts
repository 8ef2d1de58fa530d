import { describe, expect, it } from 'vitest';
import { Aggregator } from './aggregator.js';
import { ContainerExits, type ContainerExit } from './container-exits.js';
import type { ContainerRef } from './sample.js';

const ID = (c: string) => c.repeat(64);
const event = (action: string, id: string, attributes: Record<string, unknown> = {}) => ({
  Type: 'container',
  Action: action,
  Actor: { ID: id, Attributes: attributes },
});

function setup(refs: Record<string, ContainerRef> = {}) {
  let now = 1_000_000;
  const exits: ContainerExit[] = [];
  const counter = new ContainerExits(
    { labelPrefix: 'cloud.obiente' },
    { refOf: (id) => refs[id], onExit: (e) => exits.push(e), clock: () => now },
  );
  return { counter, exits, advance: (ms: number) => (now += ms) };
}

describe('container exits', () => {
  it('tells a planned stop from a crash, an OOM kill and a completion', () => {
    const { counter, exits, advance } = setup();
    const label = { 'cloud.obiente.deployment_id': 'dep-1' };
    counter.handle(event('kill', ID('a'), { signal: '15' }));
    advance(10_000); // a stop grace period
    counter.handle(event('die', ID('a'), { ...label, exitCode: '143' }));
    counter.handle(event('die', ID('b'), { ...label, exitCode: '3' }));
    counter.handle(event('oom', ID('c')));
    counter.handle(event('die', ID('c'), { ...label, exitCode: '137' }));
    counter.handle(event('die', ID('d'), { ...label, exitCode: '0' }));
    expect(exits.map((e) => [e.containerId[0], e.reason, e.exitCode])).toEqual([
      ['a', 'requested', 143],
      ['b', 'crashed', 3],
      ['c', 'oom', 137],
      ['d', 'completed', 0],
    ]);
    expect(counter.stats().exits).toEqual({ requested: 1, oom: 1, crashed: 1, completed: 1 });
    // A stop asked for long ago does not excuse a crash now.
    counter.handle(event('kill', ID('e')));
    advance(16 * 60_000);
    counter.handle(event('die', ID('e'), { ...label, exitCode: '1' }));
    expect(exits.at(-1)).toMatchObject({ reason: 'crashed' });
  });

  it('charges an exit to the deployment the collector listed, else to a valid label, else to no one', () => {
    const ref: ContainerRef = {
      containerId: ID('f'),
      deploymentId: 'dep-listed',
      nodeId: 'n1',
      serviceId: 'svc',
      taskId: 't',
      name: 'x',
    };
    const { counter, exits } = setup({ [ID('f')]: ref });
    counter.handle(event('die', ID('f'), { exitCode: '1', 'cloud.obiente.deployment_id': 'dep-forged' }));
    expect(exits[0]).toMatchObject({ deploymentId: 'dep-listed', ref });
    for (const value of ['a`) || Host(`b', '', 'x'.repeat(200), '__proto__\u200b'])
      counter.handle(event('die', ID('0'), { exitCode: '1', 'cloud.obiente.deployment_id': value }));
    counter.handle(event('die', ID('1'), { exitCode: '1' }));
    expect(exits).toHaveLength(1);
    expect(counter.stats().unattributed).toBe(5);
  });

  it('ignores what is not a container event of a real id, and bad exit codes', () => {
    const { counter, exits } = setup();
    for (const bad of [
      null,
      'die',
      42,
      { Type: 'service', Action: 'die', Actor: { ID: ID('a') } },
      event('die', 'short'),
      event('die', ID('A')),
      { Type: 'container', Action: 'die', Actor: { ID: { toString: () => ID('a') } } },
      { Type: 'container', Action: 'die', Actor: null },
    ])
      counter.handle(bad);
    expect(exits).toEqual([]);
    counter.handle(event('die', ID('a'), { exitCode: '1e9', 'cloud.obiente.deployment_id': 'dep' }));
    counter.handle(event('die', ID('b'), { exitCode: { valueOf: () => 1 }, 'cloud.obiente.deployment_id': 'dep' }));
    expect(exits.map((e) => [e.exitCode, e.reason])).toEqual([
      [null, 'crashed'],
      [null, 'crashed'],
    ]);
  });

  it('lands in the minute row of the container, with or without samples that minute', () => {
    const aggregator = new Aggregator({ graceMs: 7_000 });
    const owner = { containerId: ID('a'), deploymentId: 'dep', nodeId: 'n1', serviceId: null };
    const minute = Date.UTC(2026, 11, 1, 10, 0);
    aggregator.addExit({ ...owner, at: minute + 5_000 });
    aggregator.addExit({ ...owner, at: minute + 65_000 });
    aggregator.addExit({ ...owner, at: minute + 66_000 });
    const rows = aggregator.takeFinished(minute + 3 * 60_000);
    expect(rows.map((r) => [r.bucket - minute, r.exits, r.samples])).toEqual([
      [0, 1, 0],
      [60_000, 2, 0],
    ]);
  });
});
