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
});
