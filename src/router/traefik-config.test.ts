import v8 from 'node:v8';
import vm from 'node:vm';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import type { SwarmService, SwarmTask, Topology } from '../discovery/index.js';
import type { RoutingRow } from './routing-table.js';
import { flowJson, q } from './route-render.js';
import { toKeyValues } from './redis-publisher.js';
import { renderTraefikConfig, routeName, TraefikRenderer, type RenderOptions } from './traefik-config.js';
import { routingRow } from '../../test/fixtures/routing-rows.js';
import { swarmNode, swarmService, swarmTask, topologyOf } from '../../test/fixtures/swarm-topology.js';

const options: RenderOptions = {
  labelPrefix: 'cloud.obiente',
  entryPoints: { http: 'web', https: 'websecure' },
  defaultCertResolver: 'letsencrypt',
  network: 'edge',
  fallbackUrl: 'http://edge.internal:8080',
};

const row = routingRow;

const node = swarmNode();
const service = swarmService;
const task = swarmTask;
const topology = (services: SwarmService[], tasks: SwarmTask[]): Topology => topologyOf(services, tasks, [node]);

/** A full collection, without starting the test process with --expose-gc. */
function collectGarbage(): void {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  gc();
  gc();
}

/** Recursively key-sorted copy: the renderer must already produce exactly this. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
  );
}

type Http = {
  routers: Record<string, Record<string, unknown>>;
  services: Record<string, { loadBalancer: Record<string, unknown> }>;
  middlewares: Record<string, unknown>;
};

describe('renderTraefikConfig', () => {
  const topo = topology(
    [service('s1', 'dep-a'), service('s2', 'dep-b'), service('s3', 'dep-good1'), service('s4', 'dep-good2')],
    [task('t1', 's1', '10.0.1.3'), task('t2', 's1', '10.0.1.4'), task('t3', 's1', '10.0.1.5', 'starting')],
  );

  it('routes a host to the running replicas on the configured network', () => {
    const { config, statuses } = renderTraefikConfig([row('a', { deployment_id: 'dep-a' })], topo, options);
    const http = config.http as Http;
    const name = routeName({ id: 'a', deploymentId: 'dep-a' });
    expect(http.routers[name]).toEqual({
      entryPoints: ['web'],
      priority: 10_000_000,
      rule: 'Host(`a.example.com`)',
      service: name,
    });
    expect(http.services[name]).toEqual({
      loadBalancer: { servers: [{ url: 'http://10.0.1.3:8080' }, { url: 'http://10.0.1.4:8080' }] },
    });
    expect(statuses).toEqual([expect.objectContaining({ id: 'a', state: 'active', servers: 2 })]);
  });

  it('lists each server once, in order, when tasks share an address (host-mode replicas on one node)', () => {
    const shared = topology(
      [service('s9', 'dep-z')],
      [
        task('t9', 's9', '10.0.1.9'),
        task('t7', 's9', '10.0.1.7'),
        task('t8', 's9', '10.0.1.9'),
        task('t6', 's9', '10.0.1.7'),
      ],
    );
    const { config, statuses } = renderTraefikConfig([row('z', { deployment_id: 'dep-z' })], shared, options);
    const http = config.http as Http;
    expect(http.services[routeName({ id: 'z', deploymentId: 'dep-z' })]!.loadBalancer.servers).toEqual([
      { url: 'http://10.0.1.7:8080' },
      { url: 'http://10.0.1.9:8080' },
    ]);
    expect(statuses).toEqual([expect.objectContaining({ id: 'z', servers: 2 })]);
  });

  it('keeps the router of a deployment with no replica and answers 503 through the fallback', () => {
    const { config, statuses } = renderTraefikConfig([row('b', { deployment_id: 'dep-b' })], topo, options);
    const http = config.http as Http;
    const name = routeName({ id: 'b', deploymentId: 'dep-b' });
    expect(http.routers[name]).toMatchObject({ middlewares: ['edge-unavailable'] });
    expect(http.services[name]!.loadBalancer.servers).toEqual([{ url: 'http://edge.internal:8080' }]);
    expect(http.middlewares['edge-unavailable']).toEqual({ replacePath: { path: '/__edge/unavailable' } });
    expect(statuses[0]).toMatchObject({ state: 'no-replicas', servers: 0 });
  });

  it('adds TLS with the resolver, and an http router that redirects', () => {
    const { config } = renderTraefikConfig([row('a', { deployment_id: 'dep-a', ssl_enabled: true })], topo, options);
    const http = config.http as Http;
    const name = routeName({ id: 'a', deploymentId: 'dep-a' });
    expect(http.routers[name]).toMatchObject({ entryPoints: ['websecure'], tls: { certResolver: 'letsencrypt' } });
    expect(http.routers[`${name}-http`]).toMatchObject({
      entryPoints: ['web'],
      middlewares: ['edge-redirect-https'],
      service: name,
    });
  });

  it('writes wildcard rules with HostRegexp and ranks exact hosts and longer paths first', () => {
    const rows = [
      row('w', { deployment_id: 'dep-a', domain: '*.apps.example.com' }),
      row('e', { deployment_id: 'dep-a', domain: 'x.apps.example.com' }),
      row('p', { deployment_id: 'dep-a', domain: 'x.apps.example.com', path_prefix: '/api' }),
    ];
    const http = renderTraefikConfig(rows, topo, options).config.http as Http;
    const r = (id: string) => http.routers[routeName({ id, deploymentId: 'dep-a' })]!;
    expect(r('w').rule).toBe('HostRegexp(`^[a-z0-9-]+\\.apps\\.example\\.com$`)');
    expect(r('p').rule).toBe('Host(`x.apps.example.com`) && PathPrefix(`/api`)');
    expect(r('p').priority as number).toBeGreaterThan(r('e').priority as number);
    expect(r('e').priority as number).toBeGreaterThan(r('w').priority as number);
  });

  it('does not publish a route whose deployment has no swarm service', () => {
    const { config, statuses } = renderTraefikConfig([row('z', { deployment_id: 'dep-missing' })], topo, options);
    expect(config.http).not.toHaveProperty('routers');
    expect(statuses[0]).toMatchObject({ id: 'z', state: 'no-service' });
  });

  it('rejects bad rows one by one and keeps every good one', () => {
    const rows = [
      row('good1', { deployment_id: 'dep-a' }),
      row('bad1', { deployment_id: 'dep-a', domain: 'a.com`) || Host(`victim.com' }),
      row('bad2', { deployment_id: 'dep-a', target_port: 0 }),
      row('bad3', { deployment_id: 'dep-a', middleware: { forwardAuth: {} } }),
      row('good2', { deployment_id: 'dep-a', domain: 'other.example.com' }),
    ];
    const { config, statuses } = renderTraefikConfig(rows, topo, options);
    const http = config.http as Http;
    expect(Object.keys(http.routers)).toHaveLength(2);
    expect(JSON.stringify(config)).not.toContain('victim');
    expect(statuses.filter((s) => s.state === 'rejected').map((s) => [s.id, s.field])).toEqual([
      ['bad1', 'domain'],
      ['bad2', 'target_port'],
      ['bad3', 'middleware'],
    ]);
  });

  it('rejects the later of two rows claiming the same domain and path', () => {
    const { statuses } = renderTraefikConfig(
      [
        row('r2', { deployment_id: 'dep-a', domain: 'same.example.com' }),
        row('r1', { deployment_id: 'dep-a', domain: 'same.example.com' }),
      ],
      topo,
      options,
    );
    expect(statuses.find((s) => s.id === 'r2')).toMatchObject({
      state: 'rejected',
      reason: 'same domain and path as route r1, which claimed it first',
    });
  });

  describe('who keeps a host (the incumbent wins)', () => {
    const hostTopo = topology(
      [service('s1', 'dep-a'), service('s2', 'dep-b')],
      [task('t1', 's1', '10.0.1.3'), task('t2', 's2', '10.0.1.4')],
    );
    const state = (statuses: readonly { id: string; state: string; reason?: string }[], id: string) =>
      statuses.find((s) => s.id === id);

    it('keeps the older row by created_at, whatever the ids, and a newer row never takes a live route', () => {
      const incumbent = row('zzz', { deployment_id: 'dep-a', domain: 'shop.example.com', created_ms: 1_000 });
      const newcomer = row('aaa', { deployment_id: 'dep-b', domain: 'shop.example.com', created_ms: 2_000 });
      const renderer = new TraefikRenderer(options);
      expect(state(renderer.render([incumbent], hostTopo).statuses, 'zzz')?.state).toBe('active');
      const { statuses } = renderer.render([newcomer, incumbent], hostTopo);
      expect(state(statuses, 'zzz')?.state).toBe('active');
      expect(state(statuses, 'aaa')?.state).toBe('rejected');
      expect(state(statuses, 'aaa')?.reason).toMatch(/route zzz of deployment dep-a, which claimed it first/);
    });

    it('refuses another deployment a path under a held host, unless sharing paths is allowed', () => {
      const rows = [
        row('r1', { deployment_id: 'dep-a', domain: 'app.example.com', created_ms: 1 }),
        row('r2', { deployment_id: 'dep-b', domain: 'app.example.com', path_prefix: '/api', created_ms: 2 }),
        row('r3', { deployment_id: 'dep-a', domain: 'app.example.com', path_prefix: '/static', created_ms: 3 }),
      ];
      const denied = renderTraefikConfig(rows, hostTopo, options).statuses;
      expect(state(denied, 'r2')).toMatchObject({ state: 'rejected', field: 'domain' });
      expect(state(denied, 'r3')?.state).toBe('active');
      const shared = renderTraefikConfig(rows, hostTopo, {
        ...options,
        hostPolicy: { reservedHosts: new Set(), reservedSuffixes: [], sharing: 'paths' },
      }).statuses;
      expect(state(shared, 'r2')?.state).toBe('active');
    });

    it('refuses a newer exact host of another deployment under an older wildcard', () => {
      const rows = [
        row('w', { deployment_id: 'dep-a', domain: '*.apps.example.com', created_ms: 1 }),
        row('x', { deployment_id: 'dep-b', domain: 'shop.apps.example.com', created_ms: 2 }),
        row('y', { deployment_id: 'dep-a', domain: 'blog.apps.example.com', created_ms: 3 }),
      ];
      const { statuses } = renderTraefikConfig(rows, hostTopo, options);
      expect(state(statuses, 'x')?.state).toBe('rejected');
      expect(state(statuses, 'x')?.reason).toMatch(/under \*\.apps\.example\.com, held by deployment dep-a/);
      expect(state(statuses, 'y')?.state).toBe('active');
    });

    it('decides an unchanged exact host again when an older wildcard over it comes or goes', () => {
      const exact = row('x', { deployment_id: 'dep-b', domain: 'shop.apps.example.com', created_ms: 2 });
      const wildcard = row('w', { deployment_id: 'dep-a', domain: '*.apps.example.com', created_ms: 1 });
      const renderer = new TraefikRenderer(options);
      expect(state(renderer.render([exact], hostTopo).statuses, 'x')?.state).toBe('active');
      expect(state(renderer.render([wildcard, exact], hostTopo).statuses, 'x')?.state).toBe('rejected');
      expect(state(renderer.render([exact], hostTopo).statuses, 'x')?.state).toBe('active');
    });

    it('names the raw domains when case or a trailing dot made two strings one host', () => {
      const rows = [
        row('r1', { deployment_id: 'dep-a', domain: 'pay.example.com', created_ms: 1 }),
        row('r2', { deployment_id: 'dep-b', domain: 'PAY.Example.com.', created_ms: 2 }),
      ];
      const reason = state(renderTraefikConfig(rows, hostTopo, options).statuses, 'r2')?.reason;
      expect(reason).toContain('"PAY.Example.com." and "pay.example.com" are both pay.example.com once normalised');
    });

    it('refuses lookalike characters that IDNA maps away, naming the host they would be served as', () => {
      for (const domain of [
        'pay\u200b.example.com',
        'p\u00ADay.example.com',
        '\uff50ay.example.com',
        'pay\u3002example.com',
        'pay.exa\u200dmple.com',
      ]) {
        const status = state(
          renderTraefikConfig([row('r', { deployment_id: 'dep-a', domain })], hostTopo, options).statuses,
          'r',
        );
        expect(status, domain).toMatchObject({ state: 'rejected', field: 'domain' });
      }
      const idn = state(
        renderTraefikConfig([row('r', { deployment_id: 'dep-a', domain: 'bücher.example.com' })], hostTopo, options)
          .statuses,
        'r',
      );
      expect(idn?.state).toBe('active');
    });

    it('refuses reserved hosts and wildcards over public suffixes', () => {
      const hostPolicy = {
        reservedHosts: new Set(['api.platform.example']),
        reservedSuffixes: ['localhost', 'internal.platform.example'],
        sharing: 'deny' as const,
      };
      for (const domain of [
        '*.co.uk',
        '*.github.io',
        'localhost',
        'app.localhost',
        'api.platform.example',
        '*.platform.example',
        'x.internal.platform.example',
      ]) {
        const status = state(
          renderTraefikConfig([row('r', { deployment_id: 'dep-a', domain })], hostTopo, { ...options, hostPolicy })
            .statuses,
          'r',
        );
        expect(status, domain).toMatchObject({ state: 'rejected', field: 'domain' });
      }
      const fine = state(
        renderTraefikConfig([row('r', { deployment_id: 'dep-a', domain: '*.shop.co.uk' })], hostTopo, {
          ...options,
          hostPolicy,
        }).statuses,
        'r',
      );
      expect(fine?.state).toBe('active');
    });
  });

  it('treats prototype keys as unknown load-balancer algorithms in every provider', () => {
    for (const algo of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      const { config, body, statuses } = renderTraefikConfig(
        [row('a', { deployment_id: 'dep-a', load_balancer_algo: algo })],
        topo,
        options,
      );
      const http = config.http as Http;
      // Round robin is Traefik's default: the key is left out.
      expect(http.services[routeName({ id: 'a', deploymentId: 'dep-a' })]!.loadBalancer.strategy, algo).toBeUndefined();
      expect(body.toString(), algo).not.toContain('undefined');
      expect(statuses[0]!.warnings.join(' '), algo).toMatch(/not one of/);
    }
  });

  it('rejects a middleware nested 9,000 levels deep, or with a prototype key, on its own', () => {
    const deep = JSON.parse(`{"a":${'['.repeat(9000)}${']'.repeat(9000)}}`) as unknown;
    const deepHeaders = JSON.parse(
      `{"headers":{"customRequestHeaders":${'['.repeat(9000)}${']'.repeat(9000)}}}`,
    ) as unknown;
    const proto = JSON.parse('{"headers":{"customRequestHeaders":{"__proto__":"x"}}}') as unknown;
    const rows = [
      row('a', { deployment_id: 'dep-a', middleware: deep }),
      row('b', { deployment_id: 'dep-a', middleware: deepHeaders }),
      row('c', { deployment_id: 'dep-a', middleware: proto }),
      row('d', { deployment_id: 'dep-a' }),
    ];
    const { statuses } = renderTraefikConfig(rows, topo, options);
    expect(statuses.map((s) => [s.id, s.state, s.field])).toEqual([
      ['a', 'rejected', 'middleware'],
      ['b', 'rejected', 'middleware'],
      ['c', 'rejected', 'middleware'],
      ['d', 'active', undefined],
    ]);
    expect(statuses[2]!.reason).toMatch(/__proto__/);
    expect(
      renderTraefikConfig([row('e', { deployment_id: 'dep-a', middleware_oversized: true })], topo, options)
        .statuses[0],
    ).toMatchObject({ state: 'rejected', field: 'middleware' });
  });

  it('rejects an allowed origin with a port past 65535', () => {
    const middleware = { headers: { accessControlAllowOriginList: ['https://app.example.com:99999'] } };
    expect(
      renderTraefikConfig([row('a', { deployment_id: 'dep-a', middleware })], topo, options).statuses[0],
    ).toMatchObject({ state: 'rejected', field: 'middleware' });
  });

  it('maps strategies, sticky sessions and middlewares', () => {
    const rows = [
      row('a', {
        deployment_id: 'dep-a',
        load_balancer_algo: 'p2c',
        middleware: { rateLimit: { average: 10 }, compress: true },
      }),
      row('s', { deployment_id: 'dep-a', domain: 's.example.com', load_balancer_algo: 'sticky', ssl_enabled: true }),
    ];
    const http = renderTraefikConfig(rows, topo, options).config.http as Http;
    const a = routeName({ id: 'a', deploymentId: 'dep-a' });
    const s = routeName({ id: 's', deploymentId: 'dep-a' });
    expect(http.services[a]!.loadBalancer.strategy).toBe('p2c');
    expect(http.routers[a]!.middlewares).toEqual([`${a}-ratelimit`, `${a}-compress`]);
    expect(http.middlewares[`${a}-ratelimit`]).toEqual({ rateLimit: { average: 10 } });
    expect(http.services[s]!.loadBalancer.sticky).toMatchObject({
      cookie: { httpOnly: true, secure: true, sameSite: 'lax' },
    });
  });

  it("renders authentication, limits and a circuit breaker in the row's order, in the file and KV forms, and rejects hostile ones alone", () => {
    const bcrypt = `$2y$10$${'b'.repeat(53)}`;
    const withAuth: RenderOptions = {
      ...options,
      middlewarePolicy: { forwardAuthAllowed: ['https://auth.example.com/'] },
    };
    const rows = [
      row('a', {
        deployment_id: 'dep-a',
        middleware: [
          { forwardAuth: { address: 'https://auth.example.com/verify', authResponseHeaders: ['X-User'] } },
          { basicAuth: { users: [`alice:${bcrypt}`], realm: 'staff' } },
          { inFlightReq: { amount: 10 } },
          { circuitBreaker: { expression: 'NetworkErrorRatio()>0.5' } },
          { buffering: { maxRequestBodyBytes: 1_048_576 } },
        ],
      }),
      row('plain', {
        deployment_id: 'dep-a',
        domain: 'plain.example.com',
        middleware: { basicAuth: { users: ['alice:secret'] } },
      }),
      row('evil', {
        deployment_id: 'dep-a',
        domain: 'evil.example.com',
        middleware: { forwardAuth: { address: 'https://collector.evil.net/' } },
      }),
      row('inject', {
        deployment_id: 'dep-a',
        domain: 'inject.example.com',
        middleware: { circuitBreaker: { expression: 'NetworkErrorRatio() > 0.5 || Host(`x`)' } },
      }),
      row('good', { deployment_id: 'dep-a', domain: 'good.example.com', middleware: { inFlightReq: { amount: 1 } } }),
    ];
    const { config, statuses } = renderTraefikConfig(rows, topo, withAuth);
    const http = config.http as Http;
    const a = routeName({ id: 'a', deploymentId: 'dep-a' });
    expect(http.routers[a]!.middlewares).toEqual([
      `${a}-forwardauth`,
      `${a}-basicauth`,
      `${a}-inflightreq`,
      `${a}-circuitbreaker`,
      `${a}-buffering`,
    ]);
    expect(http.middlewares[`${a}-basicauth`]).toEqual({ basicAuth: { realm: 'staff', users: [`alice:${bcrypt}`] } });
    expect(http.middlewares[`${a}-circuitbreaker`]).toEqual({
      circuitBreaker: { expression: 'NetworkErrorRatio() > 0.5' },
    });
    expect(statuses.map((s) => [s.id, s.state, s.state === 'rejected' ? s.field : ''])).toEqual([
      ['a', 'active', ''],
      ['evil', 'rejected', 'middleware'],
      ['good', 'active', ''],
      ['inject', 'rejected', 'middleware'],
      ['plain', 'rejected', 'middleware'],
    ]);
    const kv = toKeyValues(config, 'traefik');
    expect(kv.get(`traefik/http/middlewares/${a}-basicauth/basicauth/users/0`)).toBe(`alice:${bcrypt}`);
    expect(kv.get(`traefik/http/middlewares/${a}-forwardauth/forwardauth/address`)).toBe(
      'https://auth.example.com/verify',
    );
    expect(kv.get(`traefik/http/middlewares/${a}-circuitbreaker/circuitbreaker/expression`)).toBe(
      'NetworkErrorRatio() > 0.5',
    );
    expect(kv.get(`traefik/http/routers/${a}/middlewares/0`)).toBe(`${a}-forwardauth`);
    // Error pages: the middleware asks the route's own service of this service's pages.
    const pages = renderTraefikConfig(
      [row('e', { deployment_id: 'dep-a', domain: 'e.example.com', middleware: { errors: true } })],
      topo,
      options,
    ).config;
    const e = routeName({ id: 'e', deploymentId: 'dep-a' });
    const pagesHttp = pages.http as Http;
    expect(pagesHttp.middlewares[`${e}-errors`]).toEqual({
      errors: { query: '/__edge/error/{status}', service: `${e}-errors`, status: ['500-599'] },
    });
    expect(pagesHttp.services[`${e}-errors`]).toEqual({
      loadBalancer: { servers: [{ url: 'http://edge.internal:8080' }] },
    });
    expect(toKeyValues(pages, 'traefik').get(`traefik/http/middlewares/${e}-errors/errors/query`)).toBe(
      '/__edge/error/{status}',
    );
    // Without the operator's allow-list, forwardAuth is refused and says why.
    const closed = renderTraefikConfig([rows[0]!], topo, options).statuses[0]!;
    expect(closed).toMatchObject({ state: 'rejected', field: 'middleware' });
    expect(JSON.stringify(closed)).toMatch(/TRAEFIK_FORWARD_AUTH_ALLOWED/);
  });

  it('uses the node address for host-network tasks and host-mode published ports', () => {
    const hostNet = service('h', 'dep-h', { hostNetwork: true });
    const published = service('p', 'dep-p', { ports: [{ target: 8080, published: 30080, mode: 'host' }] });
    const bare = (id: string, serviceId: string): SwarmTask => ({ ...task(id, serviceId, ''), addresses: [] });
    const t = topology([hostNet, published], [bare('th', 'h'), bare('tp', 'p')]);
    const http = renderTraefikConfig(
      [row('h', { deployment_id: 'dep-h' }), row('p', { deployment_id: 'dep-p' })],
      t,
      options,
    ).config.http as Http;
    expect(http.services[routeName({ id: 'h', deploymentId: 'dep-h' })]!.loadBalancer.servers).toEqual([
      { url: 'http://127.0.0.1:8080' },
    ]);
    expect(http.services[routeName({ id: 'p', deploymentId: 'dep-p' })]!.loadBalancer.servers).toEqual([
      { url: 'http://127.0.0.1:30080' },
    ]);
  });

  it('is deterministic, key-sorted, has no empty map and no "@" in names', () => {
    const rows = [
      row('b', { deployment_id: 'dep-b' }),
      row('a', { deployment_id: 'dep-a', middleware: { headers: { frameDeny: true, browserXssFilter: true } } }),
      row('c@x', { deployment_id: 'dep-a', domain: 'c.example.com' }),
    ];
    const first = JSON.stringify(renderTraefikConfig(rows, topo, options).config);
    const second = JSON.stringify(renderTraefikConfig([...rows].reverse(), topo, options).config);
    expect(second).toBe(first);
    expect(first).toBe(JSON.stringify(canonical(JSON.parse(first))));
    const http = (JSON.parse(first) as { http: Http }).http;
    for (const map of [http.routers, http.services, http.middlewares]) {
      expect(Object.keys(map).length).toBeGreaterThan(0);
      for (const name of Object.keys(map)) expect(name).toMatch(/^[a-z0-9-]+$/);
    }
  });

  it('still produces a valid, non-empty document when there is no route at all', () => {
    const { config } = renderTraefikConfig([], topo, options);
    expect(config.http).not.toHaveProperty('routers');
    expect(config.http).not.toHaveProperty('services');
    expect(Object.keys(config.http.middlewares).length).toBeGreaterThan(0);
    // What the file provider reads: a comment line, then JSON, parsed as YAML.
    expect(parse(`# header\n${JSON.stringify(config, null, 1)}`)).toEqual(config);
  });
});

describe('TraefikRenderer', () => {
  const services = [
    service('s1', 'dep-a'),
    service('s2', 'dep-b', { labels: { 'cloud.obiente.healthcheck.path': '/healthz' } }),
    service('s3', 'dep-c'),
  ];
  const tasks = [task('t1', 's1', '10.0.1.3'), task('t2', 's1', '10.0.1.4'), task('t3', 's2', '10.0.2.3')];
  const rows = [
    row('a', {
      deployment_id: 'dep-a',
      ssl_enabled: true,
      middleware: { headers: { customResponseHeaders: { 'X-Zeta': '1', 'X-Alpha': 'a b' } }, compress: true },
    }),
    row('b', {
      deployment_id: 'dep-b',
      domain: '*.wild.example.com',
      path_prefix: '/api',
      load_balancer_algo: 'sticky',
    }),
    row('c', { deployment_id: 'dep-c', domain: 'bücher.example' }),
    row('bad', { deployment_id: 'dep-a', domain: 'a.com`) || Host(`victim.com' }),
  ];

  it('writes one line per entry, read alike as JSON and as YAML, keys in canonical order', () => {
    const result = new TraefikRenderer(options).render(rows, topology(services, tasks));
    const text = result.body.toString();
    const config = result.config();
    expect(JSON.stringify(config)).toBe(JSON.stringify(canonical(config)));
    expect(parse(`# header\n${text}\n`)).toEqual(config);
    const http = config.http as Http;
    expect(Object.keys(http.routers)).toHaveLength(4);
    const entries =
      Object.keys(http.routers).length + Object.keys(http.services).length + Object.keys(http.middlewares).length;
    // Every entry on its own line, plus the document's structure (braces and map names).
    expect(text.split('\n')).toHaveLength(entries + 10);
    for (const name of Object.keys(http.routers))
      expect(text).toMatch(new RegExp(`^   "${name}": \\{"entryPoints": \\[`, 'm'));
  });

  it('writes routers and services by hand exactly as the generic serialiser would', () => {
    const more = [
      service('s4', 'dep-d', {
        labels: {
          'cloud.obiente.pass_host_header': 'false',
          'cloud.obiente.healthcheck.path': '/up',
          'cloud.obiente.healthcheck.interval': '5s',
        },
      }),
      service('s5', 'dep-e'),
    ];
    const extraRows = [
      row('d', { deployment_id: 'dep-d', load_balancer_algo: 'p2c', ssl_enabled: true, ssl_cert_resolver: 'other' }),
      row('e', { deployment_id: 'dep-e', load_balancer_algo: 'sticky', ssl_enabled: true }),
    ];
    const text = new TraefikRenderer(options)
      .render([...rows, ...extraRows], topology([...services, ...more], [...tasks, task('t4', 's4', '10.0.4.3')]))
      .body.toString();
    const lines = text.split('\n').filter((line) => line.startsWith('   "'));
    expect(lines.length).toBeGreaterThan(15);
    for (const line of lines) {
      const [[name, value]] = Object.entries(JSON.parse(`{${line.replace(/,$/, '')}}`) as Record<string, unknown>) as [
        [string, unknown],
      ];
      expect(line.replace(/,$/, '')).toBe(`   ${JSON.stringify(name)}: ${flowJson(value)}`);
    }
    // Every optional part of a service appears at least once above.
    for (const part of [
      '"healthCheck": ',
      '"passHostHeader": false',
      '"sticky": ',
      '"strategy": "p2c"',
      '"tls": {"certResolver": "other"}',
      '"edge-unavailable"',
    ])
      expect(text).toContain(part);
  });

  it('quotes strings exactly as JSON.stringify does', () => {
    const tricky = [
      '',
      'plain-name',
      'Host(`a.com`) && PathPrefix(`/p`)',
      'a"b',
      'back\\slash',
      'tab\there',
      '\u0000',
      '\u007f',
      '\u00e9t\u00e9',
      '\u2028',
      '\ud800',
      '\udc00x',
      '\ud83d\ude00',
      '~!@#$%^&*()_+{}|:<>?',
    ];
    for (const text of tricky) expect(q(text)).toBe(JSON.stringify(text));
  });

  it('keeps a deployment id that is already a slug, and slugs any other the same way as before', () => {
    const slugOf = (id: string) => routeName({ id: 'x', deploymentId: id }).slice(0, -17);
    const full = (id: string) =>
      id
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, '-')
        .replace(/^-+|-+$/g, '')
        .slice(0, 40) || 'route';
    for (const id of [
      'dep-a',
      'a',
      'a'.repeat(40),
      'a'.repeat(41),
      'Dep_A',
      '-dep-',
      'dep--a',
      '___',
      'dep-1-2-3',
      'x-'.repeat(30),
      'é',
    ])
      expect(slugOf(id)).toBe(full(id));
  });

  it('names routes with a readable slug and 64 bits of hash, distinct over 100,000 ids', () => {
    expect(routeName({ id: 'a', deploymentId: 'Dep_A' })).toMatch(/^dep-a-[0-9a-f]{16}$/);
    expect(routeName({ id: 'a', deploymentId: 'dep-a' })).toBe(routeName({ id: 'a', deploymentId: 'dep-a' }));
    const names = new Set<string>();
    for (let i = 0; i < 100_000; i++) names.add(routeName({ id: `route-${i}`, deploymentId: 'dep' }));
    expect(names.size).toBe(100_000);
  });

  it('refuses a second row whose route name collides, leaving the first route as it was', () => {
    const topo = topology(services, tasks);
    const collide = (route: { id: string; deploymentId: string }) =>
      route.id === 'a' || route.id === 'c' ? 'same-name' : routeName(route);
    const result = new TraefikRenderer(options, collide).render(rows, topo);
    const http = result.config().http as Http;
    expect(http.routers['same-name']).toMatchObject({ rule: 'Host(`a.example.com`)' });
    expect(JSON.stringify(http)).not.toContain('xn--bcher');
    expect(result.statuses.find((status) => status.id === 'c')).toMatchObject({
      state: 'rejected',
      field: 'id',
      reason: 'its route name same-name is taken by route a',
    });
    expect(result.statuses.find((status) => status.id === 'a')).toMatchObject({ state: 'active' });
    expect(result.statuses.find((status) => status.id === 'b')).toMatchObject({ state: 'active' });
  });

  it('spaces only the separators outside strings', () => {
    expect(flowJson({ a: 'x: y, z', b: [1, 2], c: { d: 'q\\"e:,' } })).toBe(
      '{"a": "x: y, z", "b": [1, 2], "c": {"d": "q\\\\\\"e:,"}}',
    );
    expect(JSON.parse(flowJson({ a: 'x: y, z', b: [1, { c: 'a"b' }] }))).toEqual({
      a: 'x: y, z',
      b: [1, { c: 'a"b' }],
    });
  });

  it('re-renders only the routes whose row or tasks changed, with the output of a fresh render', () => {
    const renderer = new TraefikRenderer(options);
    const topo = topology(services, tasks);
    expect(renderer.render(rows, topo).rendered).toBe(3);
    expect(renderer.render(rows, topo).rendered).toBe(0);

    // A row changed (a new object, as RoutingTable hands out for changed rows only).
    const changedRows = rows.map((r) => (r.id === 'c' ? { ...r, domain: 'c2.example.com' } : r));
    const afterRow = renderer.render(changedRows, topo);
    expect(afterRow.rendered).toBe(1);
    expect(afterRow.body.equals(new TraefikRenderer(options).render(changedRows, topo).body)).toBe(true);

    // dep-a scaled from 2 replicas to 1: only its route is rendered again.
    const scaled = topology(
      services,
      tasks.filter((t) => t.id !== 't2'),
    );
    const afterScale = renderer.render(changedRows, scaled);
    expect(afterScale.rendered).toBe(1);
    expect(afterScale.body.equals(new TraefikRenderer(options).render(changedRows, scaled).body)).toBe(true);

    // A full reconcile: every object new, same content: nothing to render.
    const copies = topology(
      services.map((s) => ({ ...s })),
      tasks.filter((t) => t.id !== 't2').map((t) => ({ ...t })),
    );
    expect(renderer.render(changedRows, copies).rendered).toBe(0);
    expect(renderer.render(changedRows, copies).body.equals(afterScale.body)).toBe(true);
  });

  it('keeps no old document alive through routes left out of the new one', async () => {
    // Rows a and b stay the same objects throughout; a loses its service, b becomes a duplicate.
    const renderer = new TraefikRenderer(options);
    const topo = topology(services, tasks);
    let first: Buffer | undefined = renderer.render(rows, topo).body;
    // The Buffer object itself: routes point at it (a small one shares its ArrayBuffer with others).
    const firstDocument = new WeakRef(first);
    first = undefined;
    const withoutA = topology(
      services.filter((s) => s.deploymentId !== 'dep-a'),
      tasks,
    );
    const duplicate = row('0b', { domain: '*.wild.example.com', path_prefix: '/api', deployment_id: 'dep-c' });
    renderer.render([duplicate, ...rows], withoutA);
    // Every other route changes, so none of them points into the first document any more.
    const changed = rows.map((r) => (r.id === 'a' || r.id === 'b' ? r : { ...r, domain: `new-${r.domain as string}` }));
    const last = renderer.render([duplicate, ...changed], withoutA);
    expect(last.statuses.map((s) => `${s.id} ${s.state}`)).toEqual([
      '0b no-replicas',
      'a no-service',
      'b rejected',
      'bad rejected',
      'c no-replicas',
    ]);
    await new Promise((resolve) => setTimeout(resolve, 0));
    collectGarbage();
    expect(firstDocument.deref()).toBeUndefined();
  });

  /**
   * Names that are prefixes of other routes' names or of the shared middlewares' names: their
   * entries interleave, and the document is assembled entry by entry instead of route by route.
   */
  const PREFIXED = [
    'p',
    'p-http',
    'p-h',
    'p-compress-z',
    'edge',
    'edge-redirect',
    'edge-unavailable-x',
    'p-',
    'q',
    'q-a',
    'z',
    'e',
    'q-b',
    'zz',
  ];
  const prefixedName = (route: { id: string }) => PREFIXED[Number(route.id.slice(1))]!;

  it.each([
    ['route names', routeName],
    ['names that are prefixes of other names', prefixedName],
  ])(
    'matches a fresh render after every step of a random sequence of row and swarm changes, with %s',
    (_what, nameOf) => {
      // Deterministic pseudo-random steps: rows come, go, come back, change domain, collide on
      // domain and path, turn invalid, split and shadow each other; services and tasks come and go;
      // full reconciles copy all.
      let seed = 42;
      const random = (n: number) => {
        seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
        return (seed >>> 8) % n;
      };
      // Hosts shared across deployments, a wildcard and an exact host under it, ages out of id order.
      const domains = [
        'a.example.com',
        'b.example.com',
        '*.w.example.com',
        'c.example.com',
        'bad domain',
        'x.w.example.com',
        'A.example.com.',
      ];
      const pool = Array.from({ length: 14 }, (_, i) =>
        row(`r${String(i).padStart(2, '0')}`, {
          deployment_id: `dep-${i % 4}`,
          domain: domains[i % domains.length],
          path_prefix: i % 3 === 0 ? '/x' : '',
          ssl_enabled: i % 2 === 0,
          middleware: i % 3 === 1 ? { compress: true, retry: { attempts: 2 } } : null,
          created_ms: (i * 7) % 5,
          // Splits and shadows too, whose leaders come and go with the rows around them.
          weight: i % 5 === 2 ? 1 + (i % 3) : null,
          mirror_percent: i % 4 === 3 ? 25 : null,
        }),
      );
      let live = pool.slice(0, 8);
      let svcs = [0, 1, 2].map((i) => service(`s${i}`, `dep-${i}`));
      let tks = [task('t0', 's0', '10.0.0.2'), task('t1', 's1', '10.0.1.2')];
      const renderer = new TraefikRenderer(options, nameOf);
      for (let step = 0; step < 300; step++) {
        const action = random(8);
        if (action === 0 && live.length > 0) live = live.filter((_, i) => i !== random(live.length));
        else if (action === 1) {
          const back = pool[random(pool.length)]!;
          if (!live.includes(back)) live = [...live, back];
        } else if (action === 2 && live.length > 0) {
          const at = random(live.length);
          live = live.map((r, i) => (i === at ? { ...r, domain: domains[random(domains.length)] } : r));
        } else if (action === 3) {
          const id = `s${random(4)}`;
          svcs = svcs.some((x) => x.id === id)
            ? svcs.filter((x) => x.id !== id)
            : [...svcs, service(id, `dep-${id.slice(1)}`)];
        } else if (action === 4) {
          const serviceId = `s${random(4)}`;
          tks =
            random(2) === 0
              ? tks.filter((t) => t.serviceId !== serviceId)
              : [...tks, task(`t${step}`, serviceId, `10.0.${step % 250}.${2 + random(200)}`)];
        } else if (action === 5) {
          svcs = svcs.map((x) => ({ ...x }));
          tks = tks.map((t) => ({ ...t }));
        } else if (action === 6) live = [...live].reverse();
        const topo = topology(svcs, tks);
        const incremental = renderer.render(live, topo);
        const fresh = new TraefikRenderer(options, nameOf).render(live, topo);
        expect(incremental.body.toString(), `step ${step}`).toBe(fresh.body.toString());
        expect(incremental.statuses, `step ${step}`).toEqual(fresh.statuses);
        const config = incremental.config();
        expect(JSON.stringify(config), `step ${step}`).toBe(JSON.stringify(canonical(config)));
      }
    },
  );
});

describe('weighted splits', () => {
  const topo = topology(
    [service('s1', 'dep-blue'), service('s2', 'dep-green'), service('s3', 'dep-other')],
    [task('t1', 's1', '10.0.1.3'), task('t2', 's2', '10.0.2.3'), task('t3', 's3', '10.0.3.3')],
  );
  const split = (blue: unknown, green: unknown, extra: Partial<Record<keyof RoutingRow, unknown>> = {}) => [
    row('a1', { deployment_id: 'dep-blue', domain: 'shop.example.com', weight: blue, ...extra }),
    row('a2', { deployment_id: 'dep-green', domain: 'shop.example.com', weight: green }),
  ];
  const blue = routeName({ id: 'a1', deploymentId: 'dep-blue' });
  const green = routeName({ id: 'a2', deploymentId: 'dep-green' });

  it("publishes one router, to a weighted service over each row's service, across deployments", () => {
    const { config, statuses } = renderTraefikConfig(split(90, 10), topo, options);
    const http = config.http as Http & { services: Record<string, Record<string, unknown>> };
    expect(statuses.map((s) => [s.id, s.state, s.router])).toEqual([
      ['a1', 'active', blue],
      ['a2', 'active', blue],
    ]);
    expect(Object.keys(http.routers)).toEqual([blue]);
    expect(http.routers[blue]).toMatchObject({ rule: 'Host(`shop.example.com`)', service: `${blue}-split` });
    expect(http.services[`${blue}-split`]).toEqual({
      weighted: {
        services: [
          { name: blue, weight: 90 },
          { name: green, weight: 10 },
        ].sort((x, y) => (x.name < y.name ? -1 : 1)),
      },
    });
    expect(http.services[blue]).toMatchObject({ loadBalancer: { servers: [{ url: 'http://10.0.1.3:8080' }] } });
    expect(http.services[green]).toMatchObject({ loadBalancer: { servers: [{ url: 'http://10.0.2.3:8080' }] } });
    expect(JSON.stringify(config)).toBe(JSON.stringify(canonical(config)));
    // Traefik's Redis provider reads the same split from the KV layout.
    const kv = toKeyValues(config, 'traefik');
    const names = [0, 1].map((i) => kv.get(`traefik/http/services/${blue}-split/weighted/services/${i}/name`));
    expect(names.sort()).toEqual([blue, green].sort());
  });

  it("keeps stickiness across the split, and takes the first row's middlewares only", () => {
    const { config, statuses } = renderTraefikConfig(
      [
        row('a1', {
          deployment_id: 'dep-blue',
          domain: 'shop.example.com',
          weight: 1,
          load_balancer_algo: 'sticky',
          ssl_enabled: true,
        }),
        row('a2', {
          deployment_id: 'dep-green',
          domain: 'shop.example.com',
          weight: 1,
          middleware: { compress: true },
        }),
      ],
      topo,
      options,
    );
    const http = config.http as Http & { services: Record<string, Record<string, { sticky?: unknown }>> };
    expect(http.services[`${blue}-split`]!.weighted!.sticky).toMatchObject({ cookie: { secure: true } });
    expect(http.routers[`${blue}-http`]).toMatchObject({ service: `${blue}-split` });
    expect(statuses[1]!.warnings.join()).toMatch(/first row's/);
    expect(Object.keys(http.middlewares).some((name) => name.startsWith(green))).toBe(false);
  });

  it('moves all traffic in one change of the document (blue-green), and keeps rows without weights to the first-come rule', () => {
    const before = renderTraefikConfig(split(100, 0), topo, options).config;
    const after = renderTraefikConfig(split(0, 100), topo, options).config;
    const weights = (config: typeof before) =>
      (config.http.services![`${blue}-split`] as { weighted: { services: Array<{ name: string; weight: number }> } })
        .weighted.services;
    expect(weights(before).find((s) => s.name === green)!.weight).toBe(0);
    expect(weights(after).find((s) => s.name === green)!.weight).toBe(100);

    // A row without a weight on the split's host and path, or a weighted row on an unsplit one: refused.
    const mixed = renderTraefikConfig(
      [
        ...split(50, 50),
        row('a3', { deployment_id: 'dep-other', domain: 'shop.example.com' }),
        row('b1', { deployment_id: 'dep-other', domain: 'plain.example.com' }),
        row('b2', { deployment_id: 'dep-green', domain: 'plain.example.com', weight: 5 }),
      ],
      topo,
      options,
    );
    expect(mixed.statuses.filter((s) => s.state === 'rejected').map((s) => s.id)).toEqual(['a3', 'b2']);
  });

  it('refuses a hostile weight with its field, while the other rows still route', () => {
    const hostile = [-1, Number.NaN, 1_000_001, 1.5, Number.POSITIVE_INFINITY, '10', true, { $gt: 0 }];
    const { statuses } = renderTraefikConfig(
      [
        ...hostile.map((weight, i) => row(`h${i}`, { deployment_id: 'dep-blue', domain: `h${i}.example.com`, weight })),
        row('good', { deployment_id: 'dep-green', domain: 'good.example.com' }),
      ],
      topo,
      options,
    );
    expect(statuses.filter((s) => s.state === 'rejected').map((s) => [s.field, s.reason])).toEqual(
      hostile.map(() => ['weight', 'must be a whole number from 0 to 1000000 (or null: not split)']),
    );
    expect(statuses.find((s) => s.id === 'good')!.state).toBe('active');
  });

  it('renders a split again when its rows or tasks change, as a fresh render would', () => {
    const renderer = new TraefikRenderer(options);
    const rows = split(70, 30);
    renderer.render(rows, topo);
    const moved = topology(
      [service('s1', 'dep-blue'), service('s2', 'dep-green'), service('s3', 'dep-other')],
      [task('t1', 's1', '10.0.1.3'), task('t4', 's2', '10.0.2.9'), task('t3', 's3', '10.0.3.3')],
    );
    const next = [rows[0]!, row('a2', { deployment_id: 'dep-green', domain: 'shop.example.com', weight: 40 })];
    expect(renderer.render(next, moved).body.toString()).toBe(
      renderTraefikConfig(next, moved, options).body.toString(),
    );
  });

  it('publishes no router while the first row of a split has no service, and a valid document still', () => {
    const { config, body, statuses } = renderTraefikConfig(
      [
        row('a0', { deployment_id: 'dep-none', domain: 'shop.example.com', weight: 1 }),
        row('a2', { deployment_id: 'dep-green', domain: 'shop.example.com', weight: 1 }),
      ],
      topo,
      options,
    );
    expect(statuses.map((s) => s.state)).toEqual(['no-service', 'active']);
    expect(config.http.routers ?? {}).toEqual({});
    expect(JSON.parse(body.toString())).toEqual(config);
  });
});

describe('shadows (mirroring)', () => {
  const topo = topology(
    [
      service('s1', 'dep-blue'),
      service('s2', 'dep-green'),
      service('s3', 'dep-shadow'),
      service('s4', 'dep-idle', { replicas: 0 }),
    ],
    [task('t1', 's1', '10.0.1.3'), task('t2', 's2', '10.0.2.3'), task('t3', 's3', '10.0.3.3')],
  );
  const blue = routeName({ id: 'a1', deploymentId: 'dep-blue' });
  const shadow = routeName({ id: 'm1', deploymentId: 'dep-shadow' });
  type Services = Record<string, Record<string, unknown>>;
  type MirrorHttp = Omit<Http, 'services'> & { services: Services };

  it("copies a share of a route's requests to its shadow, bounded in body size, in the file and KV forms", () => {
    const { config, statuses } = renderTraefikConfig(
      [
        row('a1', { deployment_id: 'dep-blue', domain: 'shop.example.com', ssl_enabled: true }),
        row('m1', {
          deployment_id: 'dep-shadow',
          domain: 'shop.example.com',
          mirror_percent: 10,
          middleware: { compress: true },
        }),
      ],
      topo,
      options,
    );
    const http = config.http as unknown as MirrorHttp;
    expect(statuses.map((s) => [s.id, s.state, s.router])).toEqual([
      ['a1', 'active', blue],
      ['m1', 'active', blue],
    ]);
    expect(statuses[1]!.warnings.join()).toMatch(/a shadow gets copies of the mirrored route's requests/);
    expect(Object.keys(http.routers).sort()).toEqual([blue, `${blue}-http`]);
    expect(http.routers[blue]).toMatchObject({ service: `${blue}-mirror` });
    expect(http.routers[`${blue}-http`]).toMatchObject({ service: `${blue}-mirror` });
    expect(http.services[`${blue}-mirror`]).toEqual({
      mirroring: { maxBodySize: 1_048_576, mirrors: [{ name: shadow, percent: 10 }], service: blue },
    });
    expect(http.services[shadow]).toMatchObject({ loadBalancer: { servers: [{ url: 'http://10.0.3.3:8080' }] } });
    expect(Object.keys(http.middlewares).some((name) => name.startsWith(shadow))).toBe(false);
    expect(JSON.stringify(config)).toBe(JSON.stringify(canonical(config)));
    const kv = toKeyValues(config, 'traefik');
    expect(kv.get(`traefik/http/services/${blue}-mirror/mirroring/service`)).toBe(blue);
    expect(kv.get(`traefik/http/services/${blue}-mirror/mirroring/mirrors/0/name`)).toBe(shadow);
    expect(kv.get(`traefik/http/services/${blue}-mirror/mirroring/mirrors/0/percent`)).toBe('10');
    expect(kv.get(`traefik/http/services/${blue}-mirror/mirroring/maxbodysize`)).toBe('1048576');
  });

  it('mirrors a split as a whole, leaves out a shadow with no replica, and stops copying while the route has none', () => {
    const rows = [
      row('a1', { deployment_id: 'dep-blue', domain: 'shop.example.com', weight: 90 }),
      row('a2', { deployment_id: 'dep-green', domain: 'shop.example.com', weight: 10 }),
      row('m1', { deployment_id: 'dep-shadow', domain: 'shop.example.com', mirror_percent: 100 }),
      row('m2', { deployment_id: 'dep-idle', domain: 'shop.example.com', mirror_percent: 50 }),
    ];
    const { config, statuses } = renderTraefikConfig(rows, topo, options);
    const http = config.http as unknown as MirrorHttp;
    expect(statuses.map((s) => [s.id, s.state])).toEqual([
      ['a1', 'active'],
      ['a2', 'active'],
      ['m1', 'active'],
      ['m2', 'no-replicas'],
    ]);
    expect(http.routers[blue]).toMatchObject({ service: `${blue}-mirror` });
    expect(http.services[`${blue}-mirror`]).toEqual({
      mirroring: { maxBodySize: 1_048_576, mirrors: [{ name: shadow, percent: 100 }], service: `${blue}-split` },
    });
    expect((http.services[`${blue}-split`] as { weighted: { services: unknown[] } }).weighted.services).toHaveLength(2);

    // Nothing runs the split: the router answers 503 and copies nothing.
    const down = topology(
      [service('s1', 'dep-blue'), service('s2', 'dep-green'), service('s3', 'dep-shadow')],
      [task('t3', 's3', '10.0.3.3')],
    );
    const idle = renderTraefikConfig(rows, down, options).config.http as unknown as MirrorHttp;
    expect(idle.routers[blue]).toMatchObject({ service: `${blue}-split` });
    expect(idle.services[`${blue}-mirror`]).toBeUndefined();
  });

  it('refuses a shadow with nothing to mirror, or a hostile percentage, with its field; the routes are untouched', () => {
    const hostile = [-1, 101, 2.5, Number.NaN, Number.POSITIVE_INFINITY, '10', true, { $gt: 0 }];
    const { config, statuses } = renderTraefikConfig(
      [
        row('a1', { deployment_id: 'dep-blue', domain: 'shop.example.com' }),
        ...hostile.map((mirror_percent, i) =>
          row(`h${i}`, { deployment_id: 'dep-shadow', domain: 'shop.example.com', mirror_percent }),
        ),
        row('n1', { deployment_id: 'dep-shadow', domain: 'nobody.example.com', mirror_percent: 10 }),
        row('n2', { deployment_id: 'dep-shadow', domain: 'shop.example.com', path_prefix: '/api', mirror_percent: 10 }),
        row('w1', { deployment_id: 'dep-shadow', domain: 'shop.example.com', mirror_percent: 10, weight: 1 }),
        row('t1', {
          deployment_id: 'dep-shadow',
          domain: 'tcp.example.com',
          protocol: 'tcp',
          ssl_enabled: true,
          mirror_percent: 10,
        }),
        row('t2', { deployment_id: 'dep-green', domain: 'db.example.com', protocol: 'tcp', ssl_enabled: true }),
        row('t3', { deployment_id: 'dep-shadow', domain: 'db.example.com', mirror_percent: 10 }),
        row('x1', { deployment_id: 'dep-blue', domain: 'taken.example.com' }),
        row('x2', { deployment_id: 'dep-green', domain: 'taken.example.com', path_prefix: '/x' }),
        row('x3', { deployment_id: 'dep-shadow', domain: 'taken.example.com', path_prefix: '/x', mirror_percent: 10 }),
      ],
      topo,
      options,
    );
    const rejected = Object.fromEntries(
      statuses.filter((s) => s.state === 'rejected').map((s) => [s.id, `${s.field}: ${s.reason}`]),
    );
    for (let i = 0; i < hostile.length; i++)
      expect(rejected[`h${i}`]).toBe('mirror_percent: must be a whole number from 0 to 100 (or null: not a shadow)');
    expect(rejected).toMatchObject({
      n1: 'mirror_percent: no route holds this host and path: a shadow needs a route to mirror',
      n2: 'mirror_percent: no route holds this host and path: a shadow needs a route to mirror',
      t1: 'mirror_percent: mirroring is for HTTP routes',
    });
    expect(rejected.w1).toMatch(/^mirror_percent: a shadow takes copies/);
    expect(rejected.t3).toMatch(/^mirror_percent: .*route t2\) is TCP/);
    expect(rejected.x3).toMatch(/^mirror_percent: .*route x2\) is rejected/);
    expect(statuses.find((s) => s.id === 'a1')!.state).toBe('active');
    expect((config.http.routers as Record<string, { service: string }>)[blue]!.service).toBe(blue);
  });

  it('renders the mirrored route again when a shadow comes or goes, as a fresh render would', () => {
    const renderer = new TraefikRenderer(options);
    const route = row('a1', { deployment_id: 'dep-blue', domain: 'shop.example.com' });
    const shadowRow = row('m1', { deployment_id: 'dep-shadow', domain: 'shop.example.com', mirror_percent: 5 });
    const steps = [[route], [route, shadowRow], [route], [shadowRow], [route, shadowRow]];
    for (const rows of steps)
      expect(renderer.render(rows, topo).body.toString()).toBe(
        renderTraefikConfig(rows, topo, options).body.toString(),
      );
  });
});

describe('TCP and UDP routes', () => {
  const streamOptions: RenderOptions = {
    ...options,
    streamEntryPoints: { tcp: ['postgres', 'mqtt'], udp: ['game', 'dns'] },
  };
  const topo = topology(
    [service('s1', 'dep-db'), service('s2', 'dep-game'), service('s3', 'dep-web'), service('s4', 'dep-other')],
    [
      task('t1', 's1', '10.0.1.3'),
      task('t2', 's1', '10.0.1.4'),
      task('t3', 's2', '10.0.2.3'),
      task('t4', 's3', '10.0.3.3'),
      task('t5', 's4', '10.0.4.3'),
    ],
  );
  type Stream = { routers: Record<string, Record<string, unknown>>; services: Record<string, unknown> };
  const db = routeName({ id: 'db', deploymentId: 'dep-db' });
  const game = routeName({ id: 'udp', deploymentId: 'dep-game' });
  const rows = [
    row('db', {
      deployment_id: 'dep-db',
      domain: 'db.example.com',
      protocol: 'tcp',
      target_port: 5432,
      ssl_enabled: true,
      middleware: [{ inFlightConn: { amount: 100 } }, { ipAllowList: { sourceRange: ['10.0.0.0/8'] } }],
    }),
    row('pass', {
      deployment_id: 'dep-db',
      domain: 'pass.example.com',
      protocol: 'tcp',
      target_port: 443,
      ssl_enabled: true,
      tls_passthrough: true,
      entry_point: 'mqtt',
    }),
    row('plain', { deployment_id: 'dep-db', domain: 'plain.example.com', protocol: 'tcp', entry_point: 'postgres' }),
    row('udp', {
      deployment_id: 'dep-game',
      domain: 'game.example.com',
      protocol: 'udp',
      target_port: 27015,
      entry_point: 'game',
    }),
    row('web', { deployment_id: 'dep-web', domain: 'web.example.com' }),
  ];

  it('publishes TCP routers by SNI (terminated or passed through), a plain one on its own entry point, and UDP, in every provider', () => {
    const { config, body, statuses } = renderTraefikConfig(rows, topo, streamOptions);
    expect(statuses.map((s) => [s.id, s.state, s.servers])).toEqual([
      ['db', 'active', 2],
      ['pass', 'active', 2],
      ['plain', 'active', 2],
      ['udp', 'active', 1],
      ['web', 'active', 1],
    ]);
    const tcp = config.tcp as Stream & { middlewares: Record<string, unknown> };
    expect(tcp.routers[db]).toEqual({
      entryPoints: ['websecure'],
      middlewares: [`${db}-inflightconn`, `${db}-ipallowlist`],
      priority: 10_000_000,
      rule: 'HostSNI(`db.example.com`)',
      service: db,
      tls: { certResolver: 'letsencrypt' },
    });
    expect(tcp.services[db]).toEqual({
      loadBalancer: { servers: [{ address: '10.0.1.3:5432' }, { address: '10.0.1.4:5432' }] },
    });
    expect(tcp.middlewares).toEqual({
      [`${db}-inflightconn`]: { inFlightConn: { amount: 100 } },
      [`${db}-ipallowlist`]: { ipAllowList: { sourceRange: ['10.0.0.0/8'] } },
    });
    const pass = routeName({ id: 'pass', deploymentId: 'dep-db' });
    expect(tcp.routers[pass]).toMatchObject({ entryPoints: ['mqtt'], tls: { passthrough: true } });
    const plain = routeName({ id: 'plain', deploymentId: 'dep-db' });
    expect(tcp.routers[plain]).toEqual({ entryPoints: ['postgres'], rule: 'HostSNI(`*`)', service: plain });
    expect(config.udp).toEqual({
      routers: { [game]: { entryPoints: ['game'], service: game } },
      services: { [game]: { loadBalancer: { servers: [{ address: '10.0.2.3:27015' }] } } },
    });
    // The HTTP route is untouched by them, and the document stays canonical JSON (hence YAML).
    expect(Object.keys(config.http.routers!)).toEqual([routeName({ id: 'web', deploymentId: 'dep-web' })]);
    expect(JSON.stringify(config)).toBe(JSON.stringify(canonical(config)));
    expect(parse(body.toString())).toEqual(config);
    // Traefik's KV layout for the Redis provider.
    const kv = toKeyValues(config, 'traefik');
    expect(kv.get(`traefik/tcp/routers/${db}/rule`)).toBe('HostSNI(`db.example.com`)');
    expect(kv.get(`traefik/tcp/routers/${db}/tls/certresolver`)).toBe('letsencrypt');
    expect(kv.get(`traefik/tcp/services/${db}/loadbalancer/servers/1/address`)).toBe('10.0.1.4:5432');
    expect(kv.get(`traefik/tcp/middlewares/${db}-ipallowlist/ipallowlist/sourcerange/0`)).toBe('10.0.0.0/8');
    expect(kv.get(`traefik/udp/routers/${game}/entrypoints/0`)).toBe('game');
    expect(kv.get(`traefik/udp/services/${game}/loadbalancer/servers/0/address`)).toBe('10.0.2.3:27015');
  });

  it('writes a wildcard as HostSNIRegexp, ranked below exact hosts, and publishes nothing for a route with no replica', () => {
    const { config, statuses } = renderTraefikConfig(
      [
        row('wild', { deployment_id: 'dep-db', domain: '*.db.example.com', protocol: 'tcp', ssl_enabled: true }),
        row('idle', { deployment_id: 'dep-idle', domain: 'idle.example.com', protocol: 'tcp', ssl_enabled: true }),
        row('zero', { deployment_id: 'dep-zero', domain: 'zero.example.com', protocol: 'udp', entry_point: 'dns' }),
      ],
      topology([...topo.services.values(), service('s9', 'dep-zero')], [...[...topo.tasks.values()].flat()]),
      streamOptions,
    );
    const wild = routeName({ id: 'wild', deploymentId: 'dep-db' });
    expect((config.tcp as Stream).routers[wild]).toMatchObject({
      rule: 'HostSNIRegexp(`^[a-z0-9-]+\\.db\\.example\\.com$`)',
      priority: 30_000,
    });
    expect(statuses.map((s) => [s.id, s.state])).toEqual([
      ['idle', 'no-service'],
      ['wild', 'active'],
      ['zero', 'no-replicas'],
    ]);
    expect(config.udp).toBeUndefined();
  });

  it('refuses hostile and impossible rows with their field, while the good ones still route', () => {
    const bad: Array<[Partial<Record<keyof RoutingRow, unknown>>, string, RegExp]> = [
      [{ protocol: 'tcp', ssl_enabled: true, domain: 'x.example.com`) || HostSNI(`*' }, 'domain', /not allowed/],
      [{ protocol: 'tcp', ssl_enabled: true, domain: 'ｘ.example.com' }, 'domain', /IDNA/],
      [{ protocol: 'tcp' }, 'entry_point', /no server name to route by/],
      [{ protocol: 'tcp', entry_point: 'Postgres' }, 'entry_point', /not one of TRAEFIK_TCP_ENTRYPOINTS/],
      [{ protocol: 'tcp', entry_point: 'postgres\u200b' }, 'entry_point', /must be 1-64/],
      [{ protocol: 'tcp', entry_point: 'game' }, 'entry_point', /not one of/],
      [{ protocol: 'tcp', entry_point: { toString: 'postgres' } }, 'entry_point', /must be 1-64/],
      [{ protocol: 'tcp', ssl_enabled: true, path_prefix: '/x' }, 'path_prefix', /no path/],
      [{ protocol: 'tcp', ssl_enabled: true, weight: 5 }, 'weight', /HTTP routes/],
      [
        { protocol: 'tcp', ssl_enabled: true, middleware: { basicAuth: { users: [] } } },
        'middleware',
        /TCP middlewares only/,
      ],
      [
        { protocol: 'tcp', ssl_enabled: true, middleware: { inFlightConn: { amount: -1 } } },
        'middleware',
        /inFlightConn/,
      ],
      [
        { protocol: 'tcp', ssl_enabled: true, middleware: JSON.parse('{"__proto__": {"x": 1}}') },
        'middleware',
        /__proto__/,
      ],
      [{ protocol: 'tcp', tls_passthrough: true, entry_point: 'postgres' }, 'tls_passthrough', /needs ssl_enabled/],
      [{ protocol: 'tcp', ssl_enabled: true, tls_passthrough: 'yes' }, 'tls_passthrough', /boolean/],
      [{ protocol: 'udp' }, 'entry_point', /names its entry point/],
      [{ protocol: 'udp', entry_point: 'game', ssl_enabled: true }, 'ssl_enabled', /UDP has no TLS/],
      [{ protocol: 'udp', entry_point: 'dns', middleware: { inFlightConn: { amount: 1 } } }, 'middleware', /no UDP/],
      [{ protocol: 'UDP', entry_point: 'dns' }, 'protocol', /http, https, h2c, tcp or udp/],
      [{ entry_point: 'postgres' }, 'entry_point', /TCP and UDP routes only/],
      [{ tls_passthrough: true, ssl_enabled: true }, 'tls_passthrough', /TCP routes only/],
    ];
    const { statuses } = renderTraefikConfig(
      [...bad.map(([fields], i) => row(`bad${i}`, { deployment_id: 'dep-db', ...fields })), ...rows],
      topo,
      streamOptions,
    );
    const byId = new Map(statuses.map((s) => [s.id, s]));
    bad.forEach(([, field, reason], i) => {
      const status = byId.get(`bad${i}`)!;
      expect([i, status.state, status.field], status.reason).toEqual([i, 'rejected', field]);
      expect(status.reason).toMatch(reason);
    });
    for (const id of ['db', 'pass', 'plain', 'udp', 'web']) expect(byId.get(id)!.state).toBe('active');
  });

  it('gives an entry point without TLS or rule to the first route alone, and shares a TLS one by host', () => {
    const { config, statuses } = renderTraefikConfig(
      [
        ...rows,
        // A second UDP route on game, and TCP routes next to the plain one on postgres: refused.
        row('udp2', { deployment_id: 'dep-other', domain: 'other.example.com', protocol: 'udp', entry_point: 'game' }),
        row('tls-on-plain', {
          deployment_id: 'dep-other',
          domain: 'other.example.com',
          protocol: 'tcp',
          ssl_enabled: true,
          entry_point: 'postgres',
        }),
        // Two TLS routes of different hosts share mqtt with the passthrough one.
        row('mqtt2', {
          deployment_id: 'dep-other',
          domain: 'mq.example.com',
          protocol: 'tcp',
          ssl_enabled: true,
          entry_point: 'mqtt',
        }),
        // TLS on websecure for the HTTP route's host: Traefik would hand its TLS connections to TCP.
        row('web-tcp', { deployment_id: 'dep-web', domain: 'web.example.com', protocol: 'tcp', ssl_enabled: true }),
        // The same host as the HTTP route, but on an entry point of its own: no conflict.
        row('web-tcp2', {
          deployment_id: 'dep-web',
          domain: 'web.example.com',
          protocol: 'tcp',
          ssl_enabled: true,
          entry_point: 'mqtt',
        }),
      ],
      topo,
      streamOptions,
    );
    const byId = new Map(statuses.map((s) => [s.id, s]));
    expect(byId.get('udp2')).toMatchObject({ state: 'rejected', field: 'entry_point' });
    expect(byId.get('udp2')!.reason).toMatch(/entry point game is held by route udp of deployment dep-game/);
    expect(byId.get('tls-on-plain')).toMatchObject({ state: 'rejected', field: 'entry_point' });
    expect(byId.get('tls-on-plain')!.reason).toMatch(/holds its entry point alone/);
    expect(byId.get('mqtt2')!.state).toBe('active');
    expect(byId.get('web-tcp')).toMatchObject({ state: 'rejected', field: 'domain' });
    expect(byId.get('web-tcp2')!.state).toBe('active');
    expect(Object.keys((config.udp as Stream).routers)).toEqual([game]);

    // The holder leaves: the next row takes the entry point, incrementally as from scratch.
    const renderer = new TraefikRenderer(streamOptions);
    const all = [
      ...rows,
      row('udp2', { deployment_id: 'dep-other', domain: 'other.example.com', protocol: 'udp', entry_point: 'game' }),
    ];
    renderer.render(all, topo);
    const without = all.filter((r) => r.id !== 'udp');
    const next = renderer.render(without, topo);
    expect(next.statuses.find((s) => s.id === 'udp2')!.state).toBe('active');
    expect(next.body.toString()).toBe(renderTraefikConfig(without, topo, streamOptions).body.toString());
  });

  it('renders a TCP route again when its tasks change, as a fresh render would', () => {
    const renderer = new TraefikRenderer(streamOptions);
    const first = renderer.render(rows, topo);
    expect(renderer.render(rows, topo).rendered).toBe(0);
    const moved = topology(
      [...topo.services.values()],
      [
        task('t1', 's1', '10.0.1.3'),
        task('t6', 's1', '10.0.1.9'),
        task('t3', 's2', '10.0.2.3'),
        task('t4', 's3', '10.0.3.3'),
        task('t5', 's4', '10.0.4.3'),
      ],
    );
    const next = renderer.render(rows, moved);
    expect(next.rendered).toBe(3);
    expect(next.body.toString()).toBe(renderTraefikConfig(rows, moved, streamOptions).body.toString());
    expect(next.body.toString()).not.toBe(first.body.toString());
  });
});
