import { describe, expect, it } from 'vitest';
import { encodeServingClaim, parseServingClaim } from './task-serving-channel.js';
import type { SwarmTask } from './topology.js';

const NOW = 1_800_000_000_000;
const TASK: SwarmTask = {
  id: 'a'.repeat(25),
  serviceId: 'b'.repeat(25),
  nodeId: 'c'.repeat(25),
  state: 'running',
  desiredState: 'running',
  containerId: 'd'.repeat(64),
  addresses: [{ networkId: 'n', networkName: 'edge', ip: '10.0.0.9' }],
};

describe('task-serving announcements', () => {
  it('carry ids only, and read back as the claim', () => {
    const message = encodeServingClaim(TASK, NOW);
    expect(message).not.toContain('10.0.0.9');
    expect(parseServingClaim(Buffer.from(message), NOW + 100)).toEqual({
      taskId: TASK.id,
      serviceId: TASK.serviceId,
      nodeId: TASK.nodeId,
      containerId: TASK.containerId,
    });
  });

  it('refuse anything else, saying why', () => {
    const good = JSON.parse(encodeServingClaim(TASK, NOW)) as Record<string, unknown>;
    const bad: Array<[unknown, RegExp]> = [
      ['not json', /not JSON/],
      [[good], /not an object/],
      [null, /not an object/],
      [{ ...good, extra: 1 }, /fields/],
      [{ ...good, ip: '10.6.6.6' }, /fields/],
      [{ ...good, v: 2 }, /version/],
      [{ ...good, task: 'A'.repeat(25) }, /task is not a swarm id/],
      [{ ...good, service: `${'b'.repeat(24)}\u200b` }, /service is not a swarm id/],
      [{ ...good, node: 'ｃ'.repeat(25) }, /node is not a swarm id/],
      [{ ...good, container: 'D'.repeat(64) }, /container/],
      [{ ...good, container: null }, /container/],
      [{ ...good, at: NOW - 60_000 }, /within the last 30 s/],
      [{ ...good, at: NOW + 3_600_000 }, /within the last 30 s/],
      [{ ...good, at: Number.MAX_VALUE }, /within the last 30 s/],
      [{ ...good, at: '1800000000000' }, /within the last 30 s/],
    ];
    for (const [value, reason] of bad) {
      const text = typeof value === 'string' ? value : JSON.stringify(value);
      const parsed = parseServingClaim(Buffer.from(text), NOW);
      expect(parsed, text).toEqual({ reason: expect.stringMatching(reason) as unknown });
    }
    const proto = parseServingClaim(Buffer.from(`{"__proto__": {"v": 1}, ${JSON.stringify(good).slice(1)}`), NOW);
    expect(proto).toEqual({ reason: expect.stringMatching(/fields/) as unknown });
    expect(parseServingClaim(Buffer.alloc(10_000, 0x20), NOW)).toEqual({ reason: 'is larger than 512 bytes' });
  });
});
