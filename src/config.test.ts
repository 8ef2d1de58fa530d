import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env, '/srv');
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('runs on the embedded default when nothing is set', () => {
    const config = loadConfig({}, '/srv');
    expect(config).toMatchObject({
      host: '0.0.0.0',
      port: 8080,
      databaseUrl: undefined,
      metricsDatabaseUrl: undefined,
      redisUrl: undefined,
      dockerHost: 'unix:///var/run/docker.sock',
      roles: ['metrics', 'router'],
      labelPrefix: 'cloud.obiente',
      traefikDynamicDir: '/srv/.data/traefik',
      logLevel: 'info',
    });
  });

  it('returns a frozen object', () => {
    const config = loadConfig({}, '/srv');
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.roles)).toBe(true);
  });

  it('defaults METRICS_DATABASE_URL to DATABASE_URL', () => {
    const config = loadConfig({ DATABASE_URL: 'postgres://u:p@db:5432/app' });
    expect(config.metricsDatabaseUrl).toBe('postgres://u:p@db:5432/app');
  });

  it('reads every documented variable', () => {
    const config = loadConfig(
      {
        HOST: '127.0.0.1',
        PORT: '9000',
        DATABASE_URL: 'postgresql://u:p@db/app',
        METRICS_DATABASE_URL: 'postgres://u:p@tsdb/metrics',
        REDIS_URL: 'redis://cache:6379/0',
        DOCKER_HOST: 'tcp://docker-proxy:2375',
        EDGE_ROLES: 'router',
        LABEL_PREFIX: 'com.example',
        TRAEFIK_DYNAMIC_DIR: '/etc/traefik/dynamic',
        LOG_LEVEL: 'debug',
      },
      '/srv',
    );
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 9000,
      metricsDatabaseUrl: 'postgres://u:p@tsdb/metrics',
      redisUrl: 'redis://cache:6379/0',
      dockerHost: 'tcp://docker-proxy:2375',
      roles: ['router'],
      labelPrefix: 'com.example',
      traefikDynamicDir: '/etc/traefik/dynamic',
      logLevel: 'debug',
    });
  });

  it('treats empty values as unset', () => {
    expect(loadConfig({ PORT: '', REDIS_URL: '  ' }).port).toBe(8080);
  });

  it('names PORT when it is not a number', () => {
    expect(problemsOf({ PORT: 'abc' })).toEqual([expect.stringMatching(/^PORT="abc": must be a whole number/)]);
  });

  it('rejects ports out of range and negative ones', () => {
    expect(problemsOf({ PORT: '70000' })[0]).toMatch(/^PORT="70000"/);
    expect(problemsOf({ PORT: '-1' })[0]).toMatch(/^PORT="-1"/);
  });

  it('names EDGE_ROLES when a role is unknown', () => {
    expect(problemsOf({ EDGE_ROLES: 'nonsense' })).toEqual([
      expect.stringMatching(/^EDGE_ROLES="nonsense": must be a comma-separated list of router, metrics/),
    ]);
    expect(problemsOf({ EDGE_ROLES: 'router,nonsense' })[0]).toMatch(/^EDGE_ROLES=/);
    expect(problemsOf({ EDGE_ROLES: ',' })[0]).toMatch(/^EDGE_ROLES=/);
  });

  it('accepts both roles in any order, without duplicates', () => {
    expect(loadConfig({ EDGE_ROLES: 'router, metrics,router' }).roles).toEqual(['metrics', 'router']);
  });

  it('reports every bad variable at once', () => {
    const problems = problemsOf({
      PORT: 'abc',
      EDGE_ROLES: 'nonsense',
      LOG_LEVEL: 'loud',
      DOCKER_HOST: 'docker.sock',
      LABEL_PREFIX: 'Bad Prefix',
      REDIS_URL: 'http://cache',
    });
    expect(problems.map((p) => p.split('=')[0]).sort()).toEqual(
      ['DOCKER_HOST', 'EDGE_ROLES', 'LABEL_PREFIX', 'LOG_LEVEL', 'PORT', 'REDIS_URL'].sort(),
    );
  });

  it('never shows a database password in an error', () => {
    const bad: ReadonlyArray<readonly [string, string]> = [
      ['DATABASE_URL', 'postgres://user:secret@pg1:5432,pg2:99999/app'],
      ['DATABASE_LISTEN_URL', 'postgres://user:secret@pg1,pg2/app?target_session_attrs=standby'],
      ['REDIS_URL', 'redis+cluster://:secret@n1:7000,n2/x'],
    ];
    for (const [name, value] of bad) {
      const shown = problemsOf({ DATABASE_URL: 'postgres://u:p@db/app', [name]: value }).join('\n');
      expect(shown, name).toMatch(new RegExp(`^${name}=`));
      expect(shown, name).not.toContain('secret');
    }
    const problems = problemsOf({ DATABASE_URL: 'mysql://user:secret@db/app' });
    expect(problems[0]).toMatch(/^DATABASE_URL=/);
    expect(problems.join('\n')).not.toContain('secret');
  });

  it('reads Traefik metrics endpoints, dns+ ones too, and refuses anything else with the value named', () => {
    const config = loadConfig({
      TRAEFIK_METRICS_URLS: 'http://traefik-a:8082/metrics, dns+http://tasks.traefik:8082/metrics',
    });
    expect(config.traefikMetrics).toEqual({
      urls: ['http://traefik-a:8082/metrics', 'dns+http://tasks.traefik:8082/metrics'],
      timeoutMs: 4_000,
      maxBytes: 256 * 1024 * 1024,
    });
    expect(loadConfig({}).traefikMetrics.urls).toEqual([]);
    for (const bad of [
      'ftp://traefik/metrics',
      'http://user:secret@traefik/metrics',
      'http://traefik/metrics#x',
      'http://a/metrics,http://a/metrics',
      'traefik:8082',
      ',',
      Array.from({ length: 17 }, (_, i) => `http://t${i}/metrics`).join(','),
    ]) {
      const problems = problemsOf({ TRAEFIK_METRICS_URLS: bad });
      expect(problems[0], bad).toMatch(/^TRAEFIK_METRICS_URLS=/);
      expect(problems.join('\n')).not.toContain('secret');
    }
    expect(problemsOf({ TRAEFIK_METRICS_TIMEOUT_SECONDS: '0' })[0]).toMatch(/^TRAEFIK_METRICS_TIMEOUT_SECONDS=/);
  });

  it('reads the forwardAuth allow-list as canonical URL prefixes, and refuses anything else', () => {
    expect(loadConfig({}).routing.forwardAuthAllowed).toEqual([]);
    expect(
      loadConfig({ TRAEFIK_FORWARD_AUTH_ALLOWED: 'https://Auth.Example.com, http://authelia:9091/api/verify' }).routing
        .forwardAuthAllowed,
    ).toEqual(['https://auth.example.com/', 'http://authelia:9091/api/verify']);
    for (const bad of ['auth.example.com', 'ftp://auth/', 'https://u:secret@auth/', 'https://auth/?x=1'])
      expect(problemsOf({ TRAEFIK_FORWARD_AUTH_ALLOWED: bad }).join('\n'), bad).toMatch(
        /^TRAEFIK_FORWARD_AUTH_ALLOWED=(?![\s\S]*secret)/,
      );
  });

  it('reads the TCP and UDP entry point allow-lists, and refuses web entry points, overlaps and bad names', () => {
    expect(loadConfig({}).routing).toMatchObject({ tcpEntryPoints: [], udpEntryPoints: [] });
    expect(
      loadConfig({ TRAEFIK_TCP_ENTRYPOINTS: ' postgres, mqtt ,postgres', TRAEFIK_UDP_ENTRYPOINTS: 'game' }).routing,
    ).toMatchObject({ tcpEntryPoints: ['postgres', 'mqtt'], udpEntryPoints: ['game'] });
    expect(problemsOf({ TRAEFIK_TCP_ENTRYPOINTS: 'web' })[0]).toMatch(
      /^TRAEFIK_TCP_ENTRYPOINTS: web is a web entry point/,
    );
    expect(problemsOf({ TRAEFIK_TCP_ENTRYPOINTS: 'websecure' })[0]).toMatch(/web entry point/);
    expect(problemsOf({ TRAEFIK_TCP_ENTRYPOINTS: 'dns', TRAEFIK_UDP_ENTRYPOINTS: 'dns' })[0]).toMatch(
      /^TRAEFIK_UDP_ENTRYPOINTS: dns is also a TCP entry point/,
    );
    for (const bad of ['a b', 'x`)', '__proto__!', 'ｐostgres'])
      expect(problemsOf({ TRAEFIK_UDP_ENTRYPOINTS: bad })[0], bad).toMatch(
        /^TRAEFIK_UDP_ENTRYPOINTS=.*entry point names/,
      );
  });

  it('reads REDIS_URL as one server or as sentinels, and names a bad one without its password', () => {
    expect(loadConfig({ REDIS_URL: 'redis+sentinel://s1:26379,s2:26379/edge-master' }).redisUrl).toBe(
      'redis+sentinel://s1:26379,s2:26379/edge-master',
    );
    const problems = problemsOf({ REDIS_URL: 'redis+sentinel://u:secret@s1:26379' }).join('\n');
    expect(problems).toMatch(/^REDIS_URL=.*master name/);
    expect(problems).not.toContain('secret');
  });

  it('accepts unix and tcp Docker hosts only', () => {
    expect(loadConfig({ DOCKER_HOST: 'unix:///run/docker.sock' }).dockerHost).toBe('unix:///run/docker.sock');
    expect(problemsOf({ DOCKER_HOST: 'unix://relative.sock' })[0]).toMatch(/^DOCKER_HOST=/);
    expect(problemsOf({ DOCKER_HOST: 'tcp://host' })[0]).toMatch(/^DOCKER_HOST=/);
  });
});

describe('secrets from files', () => {
  it('reads NAME_FILE, refuses both forms at once, and names an unreadable file', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const dir = mkdtempSync('/tmp/swarm-edge-config-');
    writeFileSync(`${dir}/db`, 'postgres://edge:s3cret@db:5432/edge\n');
    expect(loadConfig({ DATABASE_URL_FILE: `${dir}/db` }, '/srv').databaseUrl).toBe(
      'postgres://edge:s3cret@db:5432/edge',
    );
    expect(() => loadConfig({ DATABASE_URL_FILE: `${dir}/db`, DATABASE_URL: 'postgres://x@y/z' }, '/srv')).toThrow(
      /not both/,
    );
    expect(() => loadConfig({ FEED_JWT_SECRET_FILE: `${dir}/missing` }, '/srv')).toThrow(
      /FEED_JWT_SECRET_FILE=.*cannot be read \(ENOENT\)/,
    );
  });

  it("refuses Traefik's Redis provider on a Redis Cluster, which it cannot read", () => {
    expect(() => loadConfig({ REDIS_URL: 'redis+cluster://n1:7000,n2:7001', TRAEFIK_REDIS_ROOT: 'traefik' })).toThrow(
      /cannot read a Redis Cluster/,
    );
    expect(loadConfig({ REDIS_URL: 'redis+cluster://n1:7000,n2:7001' }).redisUrl).toBe(
      'redis+cluster://n1:7000,n2:7001',
    );
  });

  it('takes several PostgreSQL hosts, and a listen URL only next to DATABASE_URL', () => {
    const url = 'postgres://u:p@pg1:5432,pg2:5432/app?target_session_attrs=read-write';
    expect(loadConfig({ DATABASE_URL: url, DATABASE_LISTEN_URL: 'postgres://u:p@pg1:5432/app' })).toMatchObject({
      databaseUrl: url,
      databaseListenUrl: 'postgres://u:p@pg1:5432/app',
    });
    expect(() => loadConfig({ DATABASE_LISTEN_URL: 'postgres://u:p@pg1/app' })).toThrow(/needs DATABASE_URL/);
    expect(() => loadConfig({ DATABASE_URL: 'postgres://u:p@pg1,pg2/app?target_session_attrs=any' })).toThrow(
      /target_session_attrs/,
    );
  });
});
