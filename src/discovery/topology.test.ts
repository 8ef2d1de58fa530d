import { describe, expect, it } from 'vitest';
import { parseNode, parseService, parseTask } from './topology.js';

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
});
