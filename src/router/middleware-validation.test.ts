import { describe, expect, it } from 'vitest';
import { parseBreakerExpression } from './circuit-breaker-expression.js';
import { forwardAuthPrefixes, parseMiddlewares } from './middleware-validation.js';

const policy = {
  forwardAuthAllowed: forwardAuthPrefixes(['https://auth.example.com/', 'http://authelia:9091/api/verify']),
};
// Hashes of the right shapes (bcrypt cost 10, apr1, {SHA} of "password").
const BCRYPT = `$2y$10$${'a'.repeat(53)}`;
const APR1 = '$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/';
const SHA = '{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=';

const reason = (value: unknown) => {
  const result = parseMiddlewares(value, policy);
  return 'reason' in result ? result.reason : undefined;
};

describe('middleware catalogue', () => {
  it('accepts authentication, limits, buffering and a circuit breaker, field by field', () => {
    const result = parseMiddlewares(
      {
        basicAuth: { users: [`alice:${BCRYPT}`, `bob:${APR1}`, `carol:${SHA}`], realm: 'staff', removeHeader: true },
        forwardAuth: {
          address: 'https://auth.example.com/verify?app=1',
          trustForwardHeader: false,
          authResponseHeaders: ['X-User', 'X-Email'],
          authRequestHeaders: ['Cookie'],
        },
        inFlightReq: { amount: 100 },
        buffering: { maxRequestBodyBytes: 10_485_760, memRequestBodyBytes: 2_097_152 },
        circuitBreaker: {
          expression:
            'NetworkErrorRatio() > 0.30||(ResponseCodeRatio(500, 600, 0, 600) > 0.25 && LatencyAtQuantileMS(50.0)>100)',
          checkPeriod: '10s',
          responseCode: 503,
        },
      },
      policy,
    );
    expect(result).toMatchObject({
      order: ['inFlightReq', 'basicAuth', 'forwardAuth', 'circuitBreaker', 'buffering'],
      middlewares: {
        circuitBreaker: {
          // Written out again from the parse: only the grammar's tokens, spaced one way.
          expression:
            'NetworkErrorRatio() > 0.30 || (ResponseCodeRatio(500, 600, 0, 600) > 0.25 && LatencyAtQuantileMS(50.0) > 100)',
        },
      },
    });
  });

  it("keeps the array form's order, and refuses a type given twice or an item that is not one type", () => {
    expect(
      parseMiddlewares(
        [{ compress: true }, { basicAuth: { users: [`a:${BCRYPT}`] } }, { rateLimit: { average: 5 } }],
        policy,
      ),
    ).toMatchObject({ order: ['compress', 'basicAuth', 'rateLimit'] });
    expect(reason([{ compress: true }, { compress: true }])).toMatch(/given twice/);
    expect(reason([{ compress: true, rateLimit: { average: 1 } }])).toMatch(/exactly one/);
    expect(reason([null])).toMatch(/exactly one/);
    expect(reason([{ __proto__: { compress: true } }])).toBeDefined();
    expect(reason(JSON.parse('[{"__proto__": {"average": 1}}]'))).toBeDefined();
    expect(reason([{ constructor: {} }])).toBeDefined();
  });

  it('refuses plain passwords, newlines and every hash it does not know', () => {
    for (const line of [
      'alice:secret',
      `alice:${BCRYPT}\nmallory:${BCRYPT}`,
      `alice\n:${BCRYPT}`,
      `al:ice:${BCRYPT}`,
      `:${BCRYPT}`,
      `alice:$2y$03$${'a'.repeat(53)}`,
      `alice:${BCRYPT}x`,
      `alice:$1$salt$hash`,
      `alice:{SSHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=`,
      `alice:${SHA} `,
      `ａlice:${BCRYPT}`,
    ])
      expect([line, reason({ basicAuth: { users: [line] } })]).toEqual([
        line,
        expect.stringMatching(/^basicAuth\.users\.0: /),
      ]);
    expect(reason({ basicAuth: { users: [] } })).toMatch(/basicAuth\.users/);
    expect(reason({ basicAuth: { users: [`a:${BCRYPT}`], realm: 'a"b' } })).toMatch(/realm/);
    expect(reason({ basicAuth: { users: [`a:${BCRYPT}`], usersFile: '/etc/passwd' } })).toMatch(
      /usersFile|unrecognized/i,
    );
  });

  it('lets forwardAuth call only canonical addresses under the allowed prefixes', () => {
    for (const address of [
      'https://evil.example.net/verify',
      'https://auth.example.com.evil.net/verify',
      'https://AUTH.example.com/verify',
      'https://auth.example.com/a/../verify',
      'https://user:pass@auth.example.com/verify',
      'https://auth.example.com:443/verify',
      'http://auth.example.com/verify',
      'https://auth.example.com\u200b/verify',
      'https://ａuth.example.com/verify',
      'javascript:alert(1)',
      'file:///etc/passwd',
      'http://authelia:9091/api/verifyx',
    ])
      expect([address, reason({ forwardAuth: { address } })]).toEqual([
        address,
        expect.stringMatching(/^forwardAuth\.address: /),
      ]);
    expect(reason({ forwardAuth: { address: 'http://authelia:9091/api/verify' } })).toBeUndefined();
    expect(reason({ forwardAuth: { address: 'http://authelia:9091/api/verify/x' } })).toBeUndefined();
    expect(reason({ forwardAuth: { address: 'https://auth.example.com/', authResponseHeaders: ['X User'] } })).toMatch(
      /authResponseHeaders/,
    );
    const closed = parseMiddlewares(
      { forwardAuth: { address: 'https://auth.example.com/' } },
      { forwardAuthAllowed: [] },
    );
    expect('reason' in closed && closed.reason).toMatch(/TRAEFIK_FORWARD_AUTH_ALLOWED/);
    expect(() => forwardAuthPrefixes(['ftp://x/'])).toThrow(/http/);
    expect(() => forwardAuthPrefixes(['https://u:p@x/'])).toThrow(/plain/);
    expect(forwardAuthPrefixes(['https://Auth.Example.com'])).toEqual(['https://auth.example.com/']);
  });

  it('takes error pages for 4xx and 5xx statuses and ranges only', () => {
    expect(parseMiddlewares({ errors: true }, policy)).toMatchObject({ order: ['errors'] });
    expect(reason({ errors: { status: ['500-599', '404', '429'] } })).toBeUndefined();
    for (const status of ['600', '399', '599-500', '50x', '500-599; rm', '5000', '', '500-'])
      expect([status, reason({ errors: { status: [status] } })]).toEqual([
        status,
        expect.stringMatching(/^errors\.status\.0: /),
      ]);
    expect(reason({ errors: { status: [] } })).toMatch(/errors\.status/);
    expect(reason({ errors: { status: ['500'], service: 'other@file' } })).toMatch(/errors/);
    expect(reason({ errors: { status: ['500'], query: '/{status}' } })).toMatch(/errors/);
  });

  it('bounds limits and buffers', () => {
    expect(reason({ inFlightReq: { amount: 0 } })).toMatch(/inFlightReq\.amount/);
    expect(reason({ inFlightReq: { amount: 1.5 } })).toMatch(/inFlightReq\.amount/);
    expect(reason({ buffering: { maxRequestBodyBytes: -1 } })).toMatch(/buffering\.maxRequestBodyBytes/);
    expect(reason({ buffering: { maxRequestBodyBytes: 1e300 } })).toMatch(/buffering/);
    expect(reason({ buffering: { retryExpression: 'IsNetworkError()' } })).toMatch(/buffering/);
    expect(reason({ circuitBreaker: { expression: 'NetworkErrorRatio() > 0.5', checkPeriod: '1 s' } })).toMatch(
      /checkPeriod/,
    );
  });
});

describe('circuit breaker expressions', () => {
  it('refuses anything outside the grammar: injections, other functions, bad ranges, excess', () => {
    for (const expression of [
      '',
      'true',
      'NetworkErrorRatio()',
      'NetworkErrorRatio() > 0.5; os.Exit(1)',
      'NetworkErrorRatio() > 0.5 || IsNetworkError()',
      'NetworkErrorRatio() > 0.5`',
      'NetworkErrorRatio() > -1',
      'NetworkErrorRatio() > 1e3',
      'NetworkErrorRatio() > 0x10',
      'NetworkErrorRatio(1) > 0.5',
      'ResponseCodeRatio(600, 500, 0, 600) > 0.5',
      'ResponseCodeRatio(500, 600, 0) > 0.5',
      'ResponseCodeRatio(500, 601, 0, 600) > 0.5',
      'ResponseCodeRatio(500, 600, 0, 0600) > 0.5',
      'LatencyAtQuantileMS(50) > 100',
      'LatencyAtQuantileMS(100.0) > 100',
      'LatencyAtQuantileMS(50.0) => 100',
      '(NetworkErrorRatio() > 0.5',
      'NetworkErrorRatio() > 0.5)',
      'NetworkErrorRatio() > 0.5 &&',
      `${'('.repeat(9)}NetworkErrorRatio() > 0.5${')'.repeat(9)}`,
      Array.from({ length: 17 }, () => 'NetworkErrorRatio() > 0.5').join(' || '),
      `NetworkErrorRatio() > 0.5 ${' '.repeat(300)}`,
      'NetworkErrorRatio\u200b() > 0.5',
      'ＮetworkErrorRatio() > 0.5',
    ])
      expect([expression.slice(0, 60), 'reason' in parseBreakerExpression(expression)]).toEqual([
        expression.slice(0, 60),
        true,
      ]);
    expect(parseBreakerExpression(42)).toEqual({ reason: 'must be a string' });
    expect(parseBreakerExpression(` ${'('.repeat(8)}NetworkErrorRatio() >= 0.5${')'.repeat(8)} `)).toEqual({
      expression: `${'('.repeat(8)}NetworkErrorRatio() >= 0.5${')'.repeat(8)}`,
    });
  });
});
