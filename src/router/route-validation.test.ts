import { describe, expect, it } from 'vitest';
import { validateRow } from './route-validation.js';
import type { RoutingRow } from './routing-table.js';
import { routingRow } from '../../test/fixtures/routing-rows.js';

const row = (overrides: Partial<Record<keyof RoutingRow, unknown>> = {}): RoutingRow =>
  routingRow('r1', {
    deployment_id: 'dep-1',
    domain: 'app.example.com',
    load_balancer_algo: 'round-robin',
    ...overrides,
  });

const defaults = { certResolver: 'letsencrypt' };
const rejection = (overrides: Partial<Record<keyof RoutingRow, unknown>>) => {
  const result = validateRow(row(overrides), defaults);
  if (result.ok) throw new Error(`expected a rejection for ${JSON.stringify(overrides)}`);
  return result;
};

describe('validateRow', () => {
  it('accepts a plain row', () => {
    const result = validateRow(row(), defaults);
    expect(result).toMatchObject({
      ok: true,
      route: {
        host: 'app.example.com',
        wildcard: false,
        pathPrefix: '',
        targetPort: 8080,
        strategy: 'wrr',
        sticky: false,
        tls: undefined,
      },
    });
  });

  it.each([
    ['rule injection', 'a.com`) || Host(`victim.com'],
    ['a backtick', 'a`b.com'],
    ['a quote', 'a"b.com'],
    ['a space', 'a b.com'],
    ['a leading space', ' a.com'],
    ['an @', 'user@a.com'],
    ['a newline', 'a.com\nb.com'],
    ['a NUL', 'a.com\u0000'],
    ['a 300-character label', `${'a'.repeat(300)}.com`],
    ['a 64-character label', `${'a'.repeat(64)}.com`],
    ['a wildcard in the middle', 'a.*.example.com'],
    ['a bare wildcard TLD', '*.com'],
    ['an IP address', '10.1.2.3'],
    ['an all-numeric top-level label', 'example.123'],
    ['a single all-numeric label', '12345'],
    ['a 254-character name', `${'a.'.repeat(126)}ab`],
    ['a port', 'a.com:8080'],
    ['a path', 'a.com/x'],
    ['a leading hyphen', '-a.com'],
    ['an empty string', ''],
    ['a regexp', 'a.com|b.com'],
    ['a parenthesis', 'a.com)'],
  ])('rejects a domain with %s', (_what, domain) => {
    expect(rejection({ domain }).field).toBe('domain');
  });

  it('rejects a domain that is not a string', () => {
    expect(rejection({ domain: 42 }).field).toBe('domain');
    expect(rejection({ domain: null }).field).toBe('domain');
  });

  it('lowercases hosts and converts IDN to punycode', () => {
    const result = validateRow(row({ domain: 'Bücher.Example.COM.' }), defaults);
    expect(result).toMatchObject({ ok: true, route: { host: 'xn--bcher-kva.example.com' } });
  });

  it('accepts a wildcard as the leftmost label only', () => {
    expect(validateRow(row({ domain: '*.apps.example.com' }), defaults)).toMatchObject({
      ok: true,
      route: { host: 'apps.example.com', wildcard: true },
    });
  });

  it.each([
    ['no leading slash', 'api'],
    ['a backtick', '/a`) || Path(`/b'],
    ['a space', '/a b'],
    ['a quote', "/a'b"],
    ['a dot segment', '/a/../b'],
    ['an empty segment', '/a//b'],
    ['a bad escape', '/a%zz'],
    ['a query', '/a?b=1'],
    ['too much length', `/${'a'.repeat(300)}`],
  ])('rejects a path prefix with %s', (_what, path_prefix) => {
    expect(rejection({ path_prefix }).field).toBe('path_prefix');
  });

  it.each([0, -1, 65536, 80.5, '80', null])('rejects target port %s', (target_port) => {
    expect(rejection({ target_port }).field).toBe('target_port');
  });

  it('maps load balancer algorithms and falls back to round-robin with a warning', () => {
    expect(validateRow(row({ load_balancer_algo: 'p2c' }), defaults)).toMatchObject({
      ok: true,
      route: { strategy: 'p2c' },
    });
    expect(validateRow(row({ load_balancer_algo: 'sticky' }), defaults)).toMatchObject({
      ok: true,
      route: { strategy: 'wrr', sticky: true },
    });
    const fallback = validateRow(row({ load_balancer_algo: 'fastest' }), defaults);
    expect(fallback).toMatchObject({
      ok: true,
      route: { strategy: 'wrr', warnings: [expect.stringContaining('"fastest"')] },
    });
  });

  it('uses the row certificate resolver or the default when TLS is on', () => {
    expect(validateRow(row({ ssl_enabled: true }), defaults)).toMatchObject({
      ok: true,
      route: { tls: { certResolver: 'letsencrypt' } },
    });
    expect(validateRow(row({ ssl_enabled: true, ssl_cert_resolver: 'internal' }), defaults)).toMatchObject({
      ok: true,
      route: { tls: { certResolver: 'internal' } },
    });
    expect(rejection({ ssl_enabled: true, ssl_cert_resolver: 'a b' }).field).toBe('ssl_cert_resolver');
  });

  it('accepts allowed middlewares and validates each field', () => {
    const middleware = {
      rateLimit: { average: 100, burst: 50, period: '1s' },
      compress: true,
      headers: { customResponseHeaders: { 'X-Frame-Options': 'DENY' }, stsSeconds: 31536000 },
      ipAllowList: { sourceRange: ['127.0.0.1/32', '::1'] },
    };
    expect(validateRow(row({ middleware }), defaults)).toMatchObject({ ok: true, route: { middlewares: middleware } });
  });

  it.each([
    ['an unknown middleware', { forwardAuth: { address: 'http://evil' } }],
    ['an unknown field', { rateLimit: { average: 1, sourceCriterion: {} } }],
    ['a wrong type', { rateLimit: { average: '100' } }],
    ['a header value with CRLF', { headers: { customRequestHeaders: { 'X-A': 'a\r\nX-Injected: 1' } } }],
    ['a bad CIDR', { ipAllowList: { sourceRange: ['10.0.0.0/33'] } }],
    ['an array', [{ type: 'compress' }]],
    ['a string', 'compress'],
    ['a bad duration', { rateLimit: { average: 1, period: 'forever' } }],
  ])('rejects middleware JSON with %s', (_what, middleware) => {
    expect(rejection({ middleware }).field).toBe('middleware');
  });
});
