import { describe, expect, it } from 'vitest';
import { containerHasHealthcheck, containerTaskId, parseNode, parseService, parseTask } from './topology.js';

describe('topology parsing', () => {
  it('marks a service updating while Swarm rolls it (or rolls it back), not after', () => {
    const raw = (state?: string) => ({
      ID: 'svc1',
      Spec: { Name: 'web', Labels: { 'cloud.obiente.deployment_id': 'dep-1' }, Mode: { Replicated: { Replicas: 2 } } },
      ...(state ? { UpdateStatus: { State: state } } : {}),
    });
    const updating = (state?: string) => parseService(raw(state), 'cloud.obiente')?.updating;
    expect([updating('updating'), updating('rollback_started')]).toEqual([true, true]);
    expect([updating('completed'), updating('paused'), updating('rollback_completed'), updating()]).toEqual([
      false,
      false,
      false,
      false,
    ]);
  });

  it('takes only IP addresses from task attachments: the rest never reaches a server URL', () => {
    const task = parseTask({
      ID: 't1',
      ServiceID: 's1',
      Status: { State: 'running' },
      NetworksAttachments: [
        { Network: { ID: 'n1', Spec: { Name: 'edge' } }, Addresses: ['10.0.1.3/24', 'evil"host/24', 'fd00::3/64', 42] },
      ],
    });
    expect(task?.addresses.map((a) => a.ip)).toEqual(['10.0.1.3', 'fd00::3']);
  });

  it('gives a node no address when Docker reports something else than an IP', () => {
    expect(parseNode({ ID: 'n1', Status: { Addr: '192.168.1.5' } })?.address).toBe('192.168.1.5');
    expect(parseNode({ ID: 'n1', Status: { Addr: 'x" || Host(`v`)' } })?.address).toBe('');
    expect(
      parseNode({ ID: 'n1', Status: { Addr: '0.0.0.0' }, ManagerStatus: { Addr: '10.1.2.3:2377' } })?.address,
    ).toBe('10.1.2.3');
  });

  it("keys a task's healthcheck by its image and its spec's own healthcheck, and bounds it", () => {
    const source = (ContainerSpec: unknown) =>
      parseTask({ ID: 't1', ServiceID: 's1', Status: { State: 'starting' }, Spec: { ContainerSpec } })
        ?.healthcheckSource;
    const check = { Test: ['CMD', 'true'] };
    expect(source({ Image: 'app:1' })).toBe('app:1\nnull');
    expect(source({ Image: 'app:1', Healthcheck: check })).toBe(`app:1\n${JSON.stringify(check)}`);
    expect(source({ Image: 'app:1', Healthcheck: { Test: ['NONE'] } })).not.toBe(source({ Image: 'app:1' }));
    expect([source({}), source({ Image: 42 }), source({ Image: 'x'.repeat(2_000) }), source(null)]).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });

  it("reads an inspected container's healthcheck from its health state or its config", () => {
    const inspected = (Config: unknown, Health?: unknown) => ({ Config, State: { Running: true, Health } });
    expect(containerHasHealthcheck(inspected({ Healthcheck: { Test: ['CMD-SHELL', 'true'] } }))).toBe(true);
    expect(containerHasHealthcheck(inspected({}, { Status: 'starting' }))).toBe(true);
    expect(containerHasHealthcheck(inspected({}))).toBe(false);
    expect(containerHasHealthcheck(inspected({ Healthcheck: { Test: ['NONE'] } }))).toBe(false);
    expect(containerHasHealthcheck(inspected({ Healthcheck: { Test: [] } }))).toBe(false);
    expect(containerHasHealthcheck(inspected({ Healthcheck: { Test: 'CMD true' } }))).toBeUndefined();
    expect(containerHasHealthcheck({ State: { Running: true } })).toBeUndefined();
    expect(containerHasHealthcheck('garbage')).toBeUndefined();
    expect(containerTaskId(inspected({ Labels: { 'com.docker.swarm.task.id': 't1' } }))).toBe('t1');
    expect(containerTaskId(inspected({ Labels: { 'com.docker.swarm.task.id': 7 } }))).toBeUndefined();
  });
});
