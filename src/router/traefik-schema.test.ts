/**
 * What the renderer writes, checked against Traefik v3's published schema of the file provider
 * (SchemaStore's, copied in test/fixtures/traefik with its origin): every middleware this service
 * lets a row ask for, TLS and plain routers, sticky sessions, health checks, the fallback and the
 * error-page services, weighted splits, mirroring, the shared middlewares, and TCP (terminated, passed
 * through, plain, with both TCP middlewares) and UDP routes.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import type { Topology } from '../discovery/index.js';
import { MIDDLEWARE_TYPES, TCP_MIDDLEWARE_TYPES } from './middleware-validation.js';
import { renderTraefikConfig, type RenderOptions } from './traefik-config.js';
import { routingRow } from '../../test/fixtures/routing-rows.js';
import { swarmService, swarmTask, topologyOf } from '../../test/fixtures/swarm-topology.js';

const schema = JSON.parse(
  readFileSync(path.join(import.meta.dirname, '../../test/fixtures/traefik/traefik-v3-file-provider.json'), 'utf8'),
) as object;
// strict: false: the schema uses keywords of its own (markdownDescription) beside draft-07's.
const validate = new Ajv({ strict: false, allErrors: true }).compile(schema);

const options: RenderOptions = {
  labelPrefix: 'cloud.obiente',
  entryPoints: { http: 'web', https: 'websecure' },
  defaultCertResolver: 'letsencrypt',
  network: 'edge',
  fallbackUrl: 'http://edge.internal:8080',
  middlewarePolicy: { forwardAuthAllowed: ['https://auth.example.com/'] },
  streamEntryPoints: { tcp: ['postgres'], udp: ['game'] },
};

/** One valid configuration of every middleware a row may ask for. */
const EVERY_MIDDLEWARE: Record<string, unknown> = {
  rateLimit: { average: 100, period: '1s', burst: 50 },
  compress: { minResponseBodyBytes: 1024, excludedContentTypes: ['text/event-stream'] },
  headers: {
    customRequestHeaders: { 'X-Edge': 'yes' },
    customResponseHeaders: { 'X-Frame-Options': 'DENY' },
    stsSeconds: 31536000,
    stsIncludeSubdomains: true,
    frameDeny: true,
    referrerPolicy: 'no-referrer',
    accessControlAllowOriginList: ['https://app.example.com'],
    accessControlAllowMethods: ['GET', 'POST'],
    accessControlMaxAge: 600,
  },
  redirectScheme: { scheme: 'https', permanent: true, port: '443' },
  stripPrefix: { prefixes: ['/api'] },
  ipAllowList: { sourceRange: ['10.0.0.0/8', '192.168.1.7'] },
  retry: { attempts: 3, initialInterval: '100ms' },
  basicAuth: {
    users: ['alice:$2y$05$abcdefghijklmnopqrstuuJ2Yl2nR9bq5sQkGJ8b1mZpS0yQzq4nS'],
    realm: 'edge',
    removeHeader: true,
  },
  forwardAuth: {
    address: 'https://auth.example.com/verify',
    trustForwardHeader: true,
    authResponseHeaders: ['X-User'],
    authRequestHeaders: ['Cookie'],
  },
  inFlightReq: { amount: 10 },
  buffering: { maxRequestBodyBytes: 1048576, memRequestBodyBytes: 65536 },
  errors: { status: ['500-599', '404'] },
  circuitBreaker: {
    expression: 'NetworkErrorRatio() > 0.3 || ResponseCodeRatio(500, 600, 0, 600) > 0.25',
    checkPeriod: '100ms',
    fallbackDuration: '10s',
    recoveryDuration: '10s',
    responseCode: 503,
  },
};

const row = routingRow;

/** Labels of service b: a health check, and the Host header not passed. */
const HEALTH_LABELS: Readonly<Record<string, string>> = {
  'cloud.obiente.healthcheck.path': '/healthz',
  'cloud.obiente.healthcheck.interval': '10s',
  'cloud.obiente.healthcheck.timeout': '2s',
  'cloud.obiente.pass_host_header': 'false',
};

function topology(): Topology {
  const services = ['a', 'b', 'c', 'd'].map((id) =>
    swarmService(`s-${id}`, `dep-${id}`, { replicas: 2, labels: id === 'b' ? HEALTH_LABELS : {} }),
  );
  const tasks = services.flatMap((s, i) => [1, 2].map((n) => swarmTask(`t-${s.id}-${n}`, s.id, `10.0.${i}.${n + 1}`)));
  return topologyOf(services, tasks);
}

describe("Traefik v3's published schema of the file provider", () => {
  it('takes every kind of configuration the renderer writes', () => {
    const rows = [
      row('a', { middleware: EVERY_MIDDLEWARE, ssl_enabled: true, ssl_cert_resolver: 'dns' }),
      row('b', { path_prefix: '/api', load_balancer_algo: 'sticky', protocol: 'https' }),
      row('c', { middleware: [{ errors: true }, { compress: true }, { stripPrefix: true }], protocol: 'h2c' }),
      // No running replica: routed to the fallback.
      row('e', { deployment_id: 'dep-nowhere' }),
      // A split across two deployments, sticky.
      row('s1', { deployment_id: 'dep-c', domain: 'split.example.com', weight: 9, load_balancer_algo: 'sticky' }),
      row('s2', { deployment_id: 'dep-d', domain: 'split.example.com', weight: 1 }),
      // A shadow of the split, and one of a plain route: mirroring services.
      row('m1', { deployment_id: 'dep-a', domain: 'split.example.com', mirror_percent: 20 }),
      row('m2', { deployment_id: 'dep-c', domain: 'b.example.com', path_prefix: '/api', mirror_percent: 100 }),
      // TCP by SNI with TLS terminated and both TCP middlewares; passed through; plain; and UDP.
      row('t1', {
        deployment_id: 'dep-d',
        domain: 'db.example.com',
        protocol: 'tcp',
        ssl_enabled: true,
        middleware: { ipAllowList: { sourceRange: ['10.0.0.0/8'] }, inFlightConn: { amount: 50 } },
      }),
      row('t2', {
        deployment_id: 'dep-d',
        domain: '*.tls.example.com',
        protocol: 'tcp',
        ssl_enabled: true,
        tls_passthrough: true,
      }),
      row('t3', { deployment_id: 'dep-d', domain: 'plain.example.com', protocol: 'tcp', entry_point: 'postgres' }),
      row('u1', { deployment_id: 'dep-d', domain: 'game.example.com', protocol: 'udp', entry_point: 'game' }),
    ];
    const { config, body, statuses } = renderTraefikConfig(rows, topology(), options);
    expect(statuses.filter((s) => s.state === 'rejected')).toEqual([]);
    const http = (config as { http: { middlewares: Record<string, Record<string, unknown>> } }).http;
    const kinds = new Set(Object.values(http.middlewares).flatMap((m) => Object.keys(m)));
    expect(JSON.stringify(config)).toContain('"weighted"');
    expect(JSON.stringify(config).match(/"mirroring"/g)).toHaveLength(2);
    for (const type of MIDDLEWARE_TYPES) expect(kinds, type).toContain(type);
    const tcp = (config as { tcp: { middlewares: Record<string, object>; routers: Record<string, { tls?: object }> } })
      .tcp;
    const tcpKinds = new Set(Object.values(tcp.middlewares).flatMap((m) => Object.keys(m)));
    for (const type of TCP_MIDDLEWARE_TYPES) expect(tcpKinds, type).toContain(type);
    expect(
      Object.values(tcp.routers)
        .map((r) => Object.keys(r.tls ?? { none: 1 })[0])
        .sort(),
    ).toEqual(['certResolver', 'none', 'passthrough']);
    expect(Object.keys((config as { udp: { routers: object } }).udp.routers)).toHaveLength(1);
    const balancers = Object.values(
      (config as { http: { services: Record<string, { loadBalancer: Record<string, unknown> }> } }).http.services,
    ).map((s) => s.loadBalancer);
    for (const field of ['sticky', 'healthCheck', 'passHostHeader'])
      expect(
        balancers.some((b) => field in b),
        field,
      ).toBe(true);

    // The file as Traefik reads it, and the document the HTTP provider serves.
    for (const document of [parse(body.toString('utf8')) as unknown, config]) {
      const valid = validate(document);
      expect(validate.errors ?? [], JSON.stringify(validate.errors, null, 2)).toEqual([]);
      expect(valid).toBe(true);
    }
  });

  it('is strict enough to refuse what Traefik would not read', () => {
    expect(validate({ http: { routers: { r: { rule: 'Host(`a`)' } } } })).toBe(false);
    expect(validate({ http: { middlewares: { m: { basicAuth: { users: 'alice:x' } } } } })).toBe(false);
    expect(validate({ http: { services: { s: { loadBalancer: { servers: [] } } } } })).toBe(false);
    expect(
      validate({ tcp: { routers: { r: { rule: 'HostSNI(`*`)', service: 's', tls: { passthrough: 'yes' } } } } }),
    ).toBe(false);
    expect(validate({ udp: { services: { s: { loadBalancer: { servers: [{ url: 'http://x' }] } } } } })).toBe(false);
    expect(
      validate({ http: { services: { s: { mirroring: { service: 'a', mirrors: [{ name: 'b', percent: 101 }] } } } } }),
    ).toBe(false);
  });
});
