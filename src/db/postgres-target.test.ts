import { describe, expect, it } from 'vitest';
import { parsePostgresTarget } from './postgres-target.js';

describe('PostgreSQL URLs with several hosts', () => {
  it('takes libpq host lists, and gives node-postgres one host at a time', () => {
    const target = parsePostgresTarget(
      'postgres://edge:p%40ss@pg1.internal:5432,10.0.0.2,[::1]:5433/platform?target_session_attrs=read-write&sslmode=require',
    );
    expect(target.hosts).toEqual([
      { host: 'pg1.internal', port: 5432 },
      { host: '10.0.0.2', port: 5432 },
      { host: '::1', port: 5433 },
    ]);
    expect(target.primaryOnly).toBe(true);
    expect(target.urlFor(target.hosts[2]!)).toBe('postgres://edge:p%40ss@[::1]:5433/platform?sslmode=require');
    expect(target.urlFor(target.hosts[1]!)).toBe('postgres://edge:p%40ss@10.0.0.2:5432/platform?sslmode=require');
  });

  it('keeps one host as node-postgres takes it, checked for the primary only when asked', () => {
    const plain = parsePostgresTarget('postgresql://u:p@db/app');
    expect(plain).toMatchObject({ hosts: [{ host: 'db', port: 5432 }], primaryOnly: false });
    expect(plain.urlFor(plain.hosts[0]!)).toBe('postgresql://u:p@db/app');
    const checked = parsePostgresTarget('postgres://u:p@db:6432/app?target_session_attrs=primary');
    expect(checked.primaryOnly).toBe(true);
    expect(checked.urlFor(checked.hosts[0]!)).toBe('postgres://u:p@db:6432/app');
  });

  it('refuses what it cannot connect to as the primary', () => {
    for (const bad of [
      'mysql://u@db/app',
      'postgres:///app',
      'postgres://u@h1,/app',
      'postgres://u@h1,h1:5432/app',
      'postgres://u@h1:99999,h2/app',
      'postgres://u@h 1,h2/app',
      'postgres://u@%2Ftmp,h2/app',
      'postgres://u@h1,h2/app?target_session_attrs=any',
      'postgres://u@h1,h2/app?target_session_attrs=standby',
      'postgres://u@h1/app?target_session_attrs=read-write&target_session_attrs=any',
      `postgres://u@${Array.from({ length: 17 }, (_, i) => `h${i}`).join(',')}/app`,
    ])
      expect(() => parsePostgresTarget(bad), bad).toThrow();
  });
});
