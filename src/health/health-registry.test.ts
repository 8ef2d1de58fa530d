import { describe, expect, it } from 'vitest';
import { HealthRegistry } from './health-registry.js';

describe('HealthRegistry', () => {
  it('is unavailable while a required dependency has never been reached', () => {
    const health = new HealthRegistry();
    health.register('postgres', { enabled: true });
    health.register('docker', { enabled: true });
    health.up('postgres');
    const report = health.report();
    expect(report.status).toBe('unavailable');
    expect(report.dependencies.docker).toMatchObject({ status: 'down', critical: true });
  });

  it('is only degraded when a dependency that was up goes down', () => {
    const health = new HealthRegistry();
    health.register('postgres', { enabled: true });
    health.up('postgres');
    health.down('postgres', 'connection refused');
    expect(health.report()).toMatchObject({
      status: 'degraded',
      dependencies: { postgres: { status: 'down', detail: 'connection refused', critical: false } },
    });
  });

  it('never lets an optional or disabled dependency make the service unavailable', () => {
    const health = new HealthRegistry();
    health.register('redis', { enabled: true, optional: true });
    health.register('other', { enabled: false });
    expect(health.report().status).toBe('degraded');
    health.up('redis');
    health.up('other');
    expect(health.report()).toMatchObject({ status: 'ok', dependencies: { other: { status: 'disabled' } } });
  });

  it('tells listeners about changes only', () => {
    const health = new HealthRegistry();
    health.register('docker', { enabled: true });
    const seen: string[] = [];
    health.onChange((name, status) => seen.push(`${name}:${status}`));
    health.up('docker');
    health.up('docker');
    health.down('docker', 'gone');
    expect(seen).toEqual(['docker:up', 'docker:down']);
  });

  it('keeps each recovery with its length and the cause it went down with', () => {
    let now = Date.parse('2026-12-01T00:00:00Z');
    const health = new HealthRegistry(() => now);
    health.register('postgres', { enabled: true });
    const seen: Array<number | undefined> = [];
    health.onChange((_name, status, _detail, downMs) => status === 'up' && seen.push(downMs));
    health.up('postgres');
    now += 60_000;
    health.down('postgres', 'connection refused');
    now += 2_000;
    health.down('postgres', 'no writable PostgreSQL primary');
    now += 4_500;
    health.up('postgres');
    expect(seen).toEqual([undefined, 6_500]);
    expect(health.report().dependencies.postgres!.recoveries).toEqual([
      {
        down: '2026-12-01T00:01:00.000Z',
        up: '2026-12-01T00:01:06.500Z',
        seconds: 6.5,
        cause: 'connection refused',
      },
    ]);
    for (let i = 0; i < 12; i++) {
      health.down('postgres', `outage ${i}`);
      now += 1_000;
      health.up('postgres');
    }
    const kept = health.report().dependencies.postgres!.recoveries!;
    expect(kept).toHaveLength(10);
    expect(kept.at(-1)!.cause).toBe('outage 11');
  });
});
