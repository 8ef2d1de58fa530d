/**
 * A flood of bad input from every side: websocket clients with bad tokens, malformed, oversized
 * and unauthorised frames; bad HTTP requests; fuzzed routing rows (random unicode, rule injection,
 * impossible ports and middlewares, a middleware nested 9,000 levels deep, prototype keys,
 * lookalike, reserved and public-suffix hosts); forged, oversized and skewed messages on the
 * Redis channels; tokens valid for months and clients that vanish mid-authentication; and a
 * service with an injecting label. Each attempt has the answer it must get; anything else is
 * counted as wrong. Every fuzzed domain contains "evil", so a published rule that contains it is
 * an injected route.
 */
import { connect } from 'node:net';
import type Docker from 'dockerode';
import { Redis, type RedisOptions } from 'ioredis';
import type pg from 'pg';
import { WebSocket } from 'ws';
import { NETWORK } from './cluster.js';
import { feedToken } from './feed-clients.js';
import type { ServiceInstance } from './instance.js';
import { BAD_PREFIX, LABEL } from './truth.js';

export const INJECTION_MARK = 'evil';

export interface BadInputTally {
  tried: number;
  rejectedRight: number;
  wrong: string[];
}

export type BadInputStats = Record<'websocket' | 'http' | 'rows' | 'redis' | 'labels', BadInputTally>;

export function emptyBadInputStats(): BadInputStats {
  const tally = () => ({ tried: 0, rejectedRight: 0, wrong: [] });
  return { websocket: tally(), http: tally(), rows: tally(), redis: tally(), labels: tally() };
}

function note(tally: BadInputTally, ok: boolean, what: string): void {
  tally.tried += 1;
  if (ok) tally.rejectedRight += 1;
  else if (tally.wrong.length < 20) tally.wrong.push(what);
}

// --- websocket ---------------------------------------------------------------------------------

interface WsOutcome {
  closeCode: number | undefined;
  errors: string[];
}

/** Connects, sends `frames`, and collects error codes and the close code until `enough` or `waitMs`. */
async function wsExchange(
  url: string,
  frames: ReadonlyArray<string | Buffer>,
  enough: (o: WsOutcome) => boolean,
  waitMs = 3000,
): Promise<WsOutcome> {
  return new Promise((resolve) => {
    const outcome: WsOutcome = { closeCode: undefined, errors: [] };
    const socket = new WebSocket(url);
    let finished = false;
    const done = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      resolve({ closeCode: outcome.closeCode, errors: [...outcome.errors] });
    };
    const timer = setTimeout(() => {
      socket.terminate();
      done();
    }, waitMs);
    socket.on('open', () => {
      for (const frame of frames) socket.send(frame);
    });
    socket.on('message', (data: Buffer) => {
      try {
        const frame = JSON.parse(data.toString()) as { type?: string; code?: string };
        if (frame.type === 'error' && frame.code) outcome.errors.push(frame.code);
      } catch {
        outcome.errors.push('unparseable');
      }
      if (enough(outcome)) {
        socket.terminate();
        done();
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', (code) => {
      outcome.closeCode = code;
      done();
    });
  });
}

export async function websocketFlood(
  instance: ServiceInstance,
  secret: string,
  deployments: readonly string[],
  tally: BadInputTally,
): Promise<void> {
  const base = `ws://127.0.0.1:${instance.port}/ws/metrics`;
  const good = await feedToken(secret, [deployments[0]!]);
  const expired = await feedToken(secret, ['*'], '-1m');
  const wrongKey = await feedToken('x'.repeat(40), ['*']);
  const subscribe = (deploymentId: string) => JSON.stringify({ type: 'subscribe', deploymentId });

  for (const [what, url] of [
    ['no token', base],
    ['garbage token', `${base}?token=not.a.jwt`],
    ['expired token', `${base}?token=${expired}`],
    ['token signed with another key', `${base}?token=${wrongKey}`],
  ] as const) {
    const outcome = await wsExchange(url, [subscribe(deployments[0]!)], () => false);
    note(tally, outcome.closeCode === 4001, `${what}: close ${outcome.closeCode}`);
  }
  const url = `${base}?token=${good}`;
  const cases: Array<[string, Array<string | Buffer>, (o: WsOutcome) => boolean]> = [
    ['malformed JSON', ['{"type":'], (o) => o.errors.includes('bad_json')],
    ['rule injection in deploymentId', [subscribe('a`) || Host(`evil.test')], (o) => o.errors.includes('bad_message')],
    [
      'unknown message type',
      [JSON.stringify({ type: 'drop_table', deploymentId: 'x' })],
      (o) => o.errors.includes('bad_message'),
    ],
    ['binary frame', [Buffer.from([0, 1, 2, 3])], (o) => o.errors.includes('bad_message')],
    ['random unicode', [randomUnicode(64)], (o) => o.errors.includes('bad_json') || o.errors.includes('bad_message')],
    ['unauthorised subscription', [subscribe(deployments[1] ?? 'other')], (o) => o.errors.includes('forbidden')],
    [
      'oversized frame',
      [JSON.stringify({ type: 'subscribe', deploymentId: 'x'.repeat(64 * 1024) })],
      (o) => o.closeCode === 1009,
    ],
    ['flood of bad frames', Array.from({ length: 25 }, () => 'nonsense'), (o) => o.closeCode === 1008],
  ];
  for (const [what, frames, ok] of cases) {
    const outcome = await wsExchange(url, frames, ok, 3000);
    note(tally, ok(outcome), `${what}: errors ${outcome.errors.join(',') || 'none'}, close ${outcome.closeCode}`);
  }

  // A token valid for 60 days (past setTimeout's range) must stay connected, not be closed at once.
  const longLived = await feedToken(secret, [deployments[0]!], '60d');
  const kept = await wsExchange(`${base}?token=${longLived}`, [subscribe(deployments[0]!)], () => false, 2_000);
  note(
    tally,
    kept.closeCode === undefined && kept.errors.length === 0,
    `60-day token: errors ${kept.errors.join(',') || 'none'}, close ${kept.closeCode}`,
  );

  // Clients that subscribe and vanish before their token is verified must leave no subscriber.
  // (Totals move with the soak's own readers reconnecting: a leaked one is a closed socket kept.)
  await Promise.all(
    Array.from({ length: 50 }, () => vanishDuringAuth(`${base}?token=${good}`, subscribe(deployments[0]!))),
  );
  await new Promise((resolve) => setTimeout(resolve, 500));
  const after = await feedCounts(instance);
  note(
    tally,
    after.ghostSubscribers === 0,
    `vanishing clients: ${after.ghostSubscribers} subscribers kept with a closed socket`,
  );
}

async function feedCounts(
  instance: ServiceInstance,
): Promise<{ subscribers: number; ghostSubscribers: number; remoteRejected: number }> {
  const report = (await (await fetch(`${instance.baseUrl}/metrics/observability`)).json()) as {
    feed: { subscribers: number; ghostSubscribers: number; remoteRejected: number };
  };
  return report.feed;
}

function vanishDuringAuth(url: string, frame: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = new WebSocket(url);
    socket.on('open', () => {
      socket.send(frame);
      socket.terminate();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve());
  });
}

// --- Redis channels ----------------------------------------------------------------------------

/** Marks forged messages, so that the soak's own sample recorder ignores them. */
export const FORGED_FROM = 'soak-forged';

/**
 * Publishes forged messages on a watched deployment's channel, as anyone who can reach Redis can:
 * each instance must drop every one (its rejection counter grows by as many) and keep running.
 */
export async function redisForgery(
  redis: RedisOptions,
  instances: readonly ServiceInstance[],
  deploymentId: string,
  tally: BadInputTally,
): Promise<void> {
  const client = new Redis({ ...redis, maxRetriesPerRequest: 1, lazyConnect: true });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch {
    return; // Redis is down (a fault): nothing to forge through.
  }
  const sample = {
    containerId: 'f'.repeat(64),
    deploymentId,
    nodeId: 'forged',
    serviceId: null,
    taskId: null,
    ts: Date.now(),
    cpuPercent: 1,
    memoryBytes: 1,
    memoryLimitBytes: null,
    pids: 1,
    netRxBytes: 0,
    netTxBytes: 0,
    blockReadBytes: 0,
    blockWriteBytes: 0,
    netRxDelta: 0,
    netTxDelta: 0,
    blockReadDelta: 0,
    blockWriteDelta: 0,
    netRxRate: 0,
    netTxRate: 0,
    blockReadRate: 0,
    blockWriteRate: 0,
  };
  const forged: Array<[string, string | Buffer]> = [
    ['null', 'null'],
    ['an array', '[]'],
    ['not JSON', '{"from":'],
    ['string-typed metrics', JSON.stringify({ from: FORGED_FROM, samples: [{ ...sample, cpuPercent: '99' }] })],
    ['ts 1e300', JSON.stringify({ from: FORGED_FROM, samples: [{ ...sample, ts: 1e300 }] })],
    ['ten minutes ahead', JSON.stringify({ from: FORGED_FROM, samples: [{ ...sample, ts: Date.now() + 600_000 }] })],
    ['100 KB extra field', JSON.stringify({ from: FORGED_FROM, samples: [{ ...sample, extra: 'x'.repeat(100_000) }] })],
    [
      'another deployment',
      JSON.stringify({ from: FORGED_FROM, samples: [{ ...sample, deploymentId: `${deploymentId}-other` }] }),
    ],
    ['prototype key', `{"from":"${FORGED_FROM}","samples":[],"__proto__":{"polluted":true}}`],
    ['deep nesting', `{"from":"${FORGED_FROM}","samples":[${'['.repeat(5_000)}${']'.repeat(5_000)}]}`],
    ['2 MB message', Buffer.alloc(2 * 1024 * 1024, 0x20)],
  ];
  try {
    const before = await Promise.all(instances.map((instance) => feedCounts(instance).catch(() => undefined)));
    for (const [, message] of forged) await client.publish(`swarm-edge:metrics:${deploymentId}`, message);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    for (const [i, instance] of instances.entries()) {
      const after = await feedCounts(instance).catch(() => undefined);
      const start = before[i];
      if (start === undefined) continue; // not answering before the round: a fault's business, not this check's
      const dropped = after === undefined ? -1 : after.remoteRejected - start.remoteRejected;
      for (const [what] of forged)
        note(
          tally,
          after !== undefined && dropped >= forged.length,
          `${instance.name}, ${what}: ${after === undefined ? 'instance not answering' : `${dropped} of ${forged.length} dropped`}`,
        );
    }
  } finally {
    client.disconnect();
  }
}

// --- HTTP --------------------------------------------------------------------------------------

async function rawRequest(port: number, bytes: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(undefined);
    }, 3000);
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (chunk) => (data += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      const match = /^HTTP\/1\.1 (\d{3})/.exec(data);
      resolve(match ? Number(match[1]) : undefined);
    });
  });
}

export async function httpFlood(instance: ServiceInstance, tally: BadInputTally): Promise<void> {
  const base = instance.baseUrl;
  const status = async (path: string, init: RequestInit = {}) => {
    try {
      return (await fetch(`${base}${path}`, { ...init, signal: AbortSignal.timeout(5000) })).status;
    } catch {
      return undefined;
    }
  };
  const cases: Array<[string, () => Promise<number | undefined>, readonly number[]]> = [
    ['config without a token', () => status('/traefik/dynamic'), [401]],
    [
      'config with a wrong token',
      () => status('/traefik/dynamic', { headers: { authorization: 'Bearer wrong-token-0123456789' } }),
      [401],
    ],
    [
      'route list with a wrong token',
      () => status('/traefik/routes', { headers: { authorization: 'Basic Zm9vOmJhcg==' } }),
      [401],
    ],
    ['unknown path', () => status('/../../etc/passwd'), [404]],
    ['wrong method', () => status('/health', { method: 'DELETE' }), [404, 405]],
    [
      'body where none is taken',
      () => status('/traefik/dynamic', { method: 'POST', body: 'x'.repeat(200_000) }),
      [404, 405, 413],
    ],
    ['plain GET of the websocket path', () => status('/ws/metrics'), [426]],
    [
      'header too large',
      () => rawRequest(instance.port, `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`),
      [431],
    ],
    [
      'garbage request line',
      () => rawRequest(instance.port, `\u0000\u0001GARBAGE ${randomUnicode(20)}\r\n\r\n`),
      [400],
    ],
    [
      'bad percent-encoding',
      () => rawRequest(instance.port, 'GET /traefik/%E0%A4%A HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
      [400, 404],
    ],
    [
      'injection in the path',
      () => status(`/traefik/dynamic/${encodeURIComponent("'; DROP TABLE deployment_routing; --")}`),
      [404],
    ],
  ];
  for (const [what, request, expected] of cases) {
    const got = await request();
    note(
      tally,
      got !== undefined && expected.includes(got),
      `${what}: got ${got ?? 'no answer'}, want ${expected.join('/')}`,
    );
  }
}

// --- routing rows and labels -------------------------------------------------------------------

export interface FuzzedRow {
  readonly id: string;
  readonly field: string;
  readonly values: Record<string, unknown>;
}

/** JSON written as it is (a document too deep for JSON.stringify to build). */
export class RawJson {
  constructor(readonly text: string) {}
}

/** Rows that would route to a real deployment were they not invalid, each with the field to blame. */
export function fuzzedRows(round: number, deploymentId: string, random: () => number): FuzzedRow[] {
  const id = (n: number) => `${BAD_PREFIX}${round}-${n}`;
  const d = `${INJECTION_MARK}-${round}.soak.test`;
  const rows: Array<[string, Record<string, unknown>]> = [
    ['domain', { domain: `x.soak.test\`) || Host(\`${d}` }],
    ['domain', { domain: `${randomUnicode(12, random)} ${d}` }],
    ['domain', { domain: `${d}\nHost(\`other.test\`)` }],
    ['domain', { domain: `${INJECTION_MARK}-${'a'.repeat(70)}.soak.test` }],
    ['domain', { domain: `${INJECTION_MARK}.soak.test'; DROP TABLE deployment_routing; --` }],
    ['path_prefix', { domain: `path-${d}`, path_prefix: '/a`) || PathPrefix(`/' }],
    ['path_prefix', { domain: `path2-${d}`, path_prefix: `/${randomUnicode(6, random)} x` }],
    ['target_port', { domain: `port-${d}`, target_port: 0 }],
    ['target_port', { domain: `port2-${d}`, target_port: 70_000 }],
    ['protocol', { domain: `proto-${d}`, protocol: 'gopher' }],
    ['ssl_cert_resolver', { domain: `tls-${d}`, ssl_enabled: true, ssl_cert_resolver: 'le`) evil' }],
    ['middleware', { domain: `mw-${d}`, middleware: { plugin: { evil: { url: 'http://evil.test' } } } }],
    ['middleware', { domain: `mw2-${d}`, middleware: { ipAllowList: { sourceRange: ['not-an-ip'] } } }],
    [
      'middleware',
      { domain: `mw3-${d}`, middleware: { headers: { customRequestHeaders: { 'X-A': 'a\r\nInjected: 1' } } } },
    ],
    ['deployment_id', { domain: `dep-${d}`, deployment_id: 'dep`) || Host(`evil.test' }],
    ['middleware', { domain: `deep-${d}`, middleware: new RawJson(`{"a":${'['.repeat(9_000)}${']'.repeat(9_000)}}`) }],
    [
      'middleware',
      { domain: `proto-mw-${d}`, middleware: new RawJson('{"headers":{"customRequestHeaders":{"__proto__":"x"}}}') },
    ],
    [
      'middleware',
      { domain: `big-${d}`, middleware: { headers: { customRequestHeaders: { 'X-A': 'a'.repeat(70_000) } } } },
    ],
    // The middleware catalogue: a plain password, a hash with a newline, credentials sent to a
    // host of the row's choosing, an injection in a circuit breaker, a type given twice.
    ['middleware', { domain: `ba-${d}`, middleware: { basicAuth: { users: ['admin:admin'] } } }],
    ['middleware', { domain: `ba2-${d}`, middleware: { basicAuth: { users: [`a:$2y$10$${'a'.repeat(53)}\nb:x`] } } }],
    ['middleware', { domain: `fa-${d}`, middleware: { forwardAuth: { address: `https://${d}/steal` } } }],
    [
      'middleware',
      {
        domain: `cb-${d}`,
        middleware: { circuitBreaker: { expression: `NetworkErrorRatio() > 0.5 || Host(\`${d}\`)` } },
      },
    ],
    ['middleware', { domain: `twice-${d}`, middleware: [{ compress: true }, { compress: true }] }],
    // Weights of a split: negative, NaN, infinite, fractional, past the bound.
    ['weight', { domain: `w1-${d}`, weight: -1 }],
    ['weight', { domain: `w2-${d}`, weight: 'NaN' }],
    ['weight', { domain: `w3-${d}`, weight: 'Infinity' }],
    ['weight', { domain: `w4-${d}`, weight: 2.5 }],
    ['weight', { domain: `w5-${d}`, weight: 1_000_001 }],
    ['middleware', { domain: `errors-${d}`, middleware: { errors: { status: ['500-599', `${d}`] } } }],
    // Shadows: a share past 100, negative, NaN, fractional; with a weight; on TCP; with no route
    // to mirror.
    ['mirror_percent', { domain: `m1-${d}`, mirror_percent: 101 }],
    ['mirror_percent', { domain: `m2-${d}`, mirror_percent: -5 }],
    ['mirror_percent', { domain: `m3-${d}`, mirror_percent: 'NaN' }],
    ['mirror_percent', { domain: `m4-${d}`, mirror_percent: 12.5 }],
    ['mirror_percent', { domain: `m5-${d}`, mirror_percent: 10, weight: 1 }],
    ['mirror_percent', { domain: `m6-${d}`, mirror_percent: 10, protocol: 'tcp', ssl_enabled: true }],
    ['mirror_percent', { domain: `m7-${d}`, mirror_percent: 10 }],
    // TCP and UDP: a HostSNI injection, no entry point, lookalike entry points, HTTP middlewares
    // on TCP, passthrough without TLS, TLS and middlewares on UDP.
    ['domain', { domain: `sni-${d}\`) || HostSNI(\`*`, protocol: 'tcp', ssl_enabled: true }],
    ['entry_point', { domain: `tcp-${d}`, protocol: 'tcp' }],
    ['entry_point', { domain: `tcp2-${d}`, protocol: 'tcp', entry_point: 'Websecure' }],
    ['entry_point', { domain: `udp-${d}`, protocol: 'udp', entry_point: `soak\u200b` }],
    ['entry_point', { domain: `udp2-${d}`, protocol: 'udp' }],
    ['middleware', { domain: `tcpmw-${d}`, protocol: 'tcp', ssl_enabled: true, middleware: { compress: true } }],
    ['tls_passthrough', { domain: `pt-${d}`, protocol: 'tcp', tls_passthrough: true, entry_point: 'soak' }],
    ['ssl_enabled', { domain: `udptls-${d}`, protocol: 'udp', ssl_enabled: true, entry_point: 'soak' }],
    ['domain', { domain: `zw-${INJECTION_MARK}\u200b-${round}.soak.test` }],
    ['domain', { domain: `shy-${INJECTION_MARK}\u00ad-${round}.soak.test` }],
    ['domain', { domain: `${INJECTION_MARK}-${round}\u3002soak\u3002test` }],
    ['domain', { domain: `\uff45vil-${round}.soak.test` }],
    ['domain', { domain: `${INJECTION_MARK}-${round}.localhost` }],
    ['domain', { domain: '*.co.uk' }],
  ];
  return rows.map(([field, values], n) => ({
    id: id(n),
    field,
    values: { deployment_id: deploymentId, domain: d, target_port: 8080, ...values },
  }));
}

export async function insertFuzzedRows(db: pg.Pool, rows: readonly FuzzedRow[]): Promise<void> {
  for (const row of rows) {
    const values = { id: row.id, ...row.values };
    const columns = Object.keys(values);
    const params = Object.values(values as Record<string, unknown>).map((v) =>
      v instanceof RawJson ? v.text : v !== null && typeof v === 'object' ? JSON.stringify(v) : v,
    );
    await db.query(
      `INSERT INTO deployment_routing (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`,
      params,
    );
  }
}

interface RouteStatus {
  id: string;
  state: string;
  field?: string;
}

/** Every fuzzed row must be listed as rejected, blaming the expected field, on this instance. */
export async function checkRowsRejected(
  instance: ServiceInstance,
  token: string,
  rows: readonly FuzzedRow[],
  tally: BadInputTally,
): Promise<void> {
  const response = await fetch(`${instance.baseUrl}/traefik/routes`, { headers: { authorization: `Bearer ${token}` } });
  const statuses = new Map(((await response.json()) as { routes: RouteStatus[] }).routes.map((s) => [s.id, s]));
  for (const row of rows) {
    const status = statuses.get(row.id);
    note(
      tally,
      status?.state === 'rejected' && status.field === row.field,
      `${row.id} (${row.field}): ${status ? `${status.state} ${status.field ?? ''}` : 'not listed'}`,
    );
  }
}

/** A service whose deployment label tries to inject a rule; it must route nowhere. */
export async function createInjectingService(docker: Docker, image: string): Promise<void> {
  await docker.createService({
    Name: 'soak-evil-label',
    Labels: { [LABEL]: `x\`) || Host(\`${INJECTION_MARK}-label.test` },
    TaskTemplate: {
      ContainerSpec: { Image: image, Labels: { [LABEL]: `x\`) || Host(\`${INJECTION_MARK}-label.test` } },
      Networks: [{ Target: NETWORK }],
    },
    Mode: { Replicated: { Replicas: 1 } },
  });
}

function randomUnicode(length: number, random: () => number = Math.random): string {
  const ranges: Array<[number, number]> = [
    [0x21, 0x7e],
    [0xa1, 0x24f],
    [0x590, 0x6ff],
    [0x200b, 0x202e],
    [0x4e00, 0x4fff],
    [0x1f300, 0x1f64f],
  ];
  let out = '';
  for (let i = 0; i < length; i++) {
    const [from, to] = ranges[Math.floor(random() * ranges.length)]!;
    out += String.fromCodePoint(from + Math.floor(random() * (to - from)));
  }
  return out;
}
