import { describe, expect, it } from 'vitest';
import { describeRedisTarget, parseRedisTarget } from './redis-target.js';

describe('REDIS_URL forms', () => {
  it('takes one server as a URL, and sentinels with the master name', () => {
    expect(parseRedisTarget('redis://cache:6379/0')).toEqual({ kind: 'server', url: 'redis://cache:6379/0' });
    expect(
      parseRedisTarget(
        'redis+sentinel://edge:p%40ss@s1.internal:26379,10.0.0.2:26380,[::1]:26381/edge-master?db=2&sentinelPassword=sp',
      ),
    ).toEqual({
      kind: 'sentinel',
      sentinels: [
        { host: 's1.internal', port: 26379 },
        { host: '10.0.0.2', port: 26380 },
        { host: '::1', port: 26381 },
      ],
      name: 'edge-master',
      username: 'edge',
      password: 'p@ss',
      sentinelPassword: 'sp',
      db: 2,
    });
    expect(parseRedisTarget('redis+sentinel://:secret@s1:26379/m')).toMatchObject({
      username: undefined,
      password: 'secret',
    });
  });

  it('takes a cluster as its seed nodes', () => {
    expect(parseRedisTarget('redis+cluster://:s%40cret@10.0.0.1:7000,redis-b:7001,[::1]:7002')).toEqual({
      kind: 'cluster',
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: 'redis-b', port: 7001 },
        { host: '::1', port: 7002 },
      ],
      username: undefined,
      password: 's@cret',
    });
    expect(describeRedisTarget(parseRedisTarget('redis+cluster://u:secret@n1:7000/'))).toBe('cluster via n1:7000');
    for (const bad of [
      'redis+cluster://',
      'redis+cluster://n1',
      'redis+cluster://n1:7000/0',
      'redis+cluster://n1:7000?db=1',
      'redis+cluster://n1:7000,,n2:7001',
      'redis+cluster://%E0%A4%A@n1:7000',
    ])
      expect(() => parseRedisTarget(bad), bad).toThrow();
  });

  it('refuses anything else, and never shows a password', () => {
    for (const bad of [
      'http://cache:6379',
      'redis://',
      'redis+sentinel://s1:26379',
      'redis+sentinel://s1:26379/',
      'redis+sentinel://s1/m',
      'redis+sentinel://s1:99999/m',
      'redis+sentinel://s1:26379,/m',
      'redis+sentinel://s 1:26379/m',
      'redis+sentinel://s1:26379/m a',
      'redis+sentinel://s1:26379/m?db=x',
      'redis+sentinel://s1:26379/m?evil=1',
      `redis+sentinel://${Array.from({ length: 17 }, (_, i) => `s${i}:1`).join(',')}/m`,
    ])
      expect(() => parseRedisTarget(bad), bad).toThrow();
    expect(describeRedisTarget(parseRedisTarget('redis+sentinel://u:secret@s1:26379/m'))).toBe(
      'sentinel m via s1:26379',
    );
    expect(describeRedisTarget(parseRedisTarget('redis://u:secret@cache:6379'))).not.toContain('secret');
  });
});
