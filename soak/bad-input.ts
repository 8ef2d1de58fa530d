/**
 * A flood of bad input from every side: websocket clients with bad tokens, malformed, oversized
 * and unauthorised frames; bad HTTP requests; fuzzed routing rows (random unicode, rule injection,
 * impossible ports and middlewares) and a service with an injecting label. Each attempt has the
 * answer it must get; anything else is counted as wrong. Every fuzzed domain contains "evil", so
 * a published rule that contains it is an injected route.
 */
import { connect } from 'node:net';
import type Docker from 'dockerode';
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

export type BadInputStats = Record<'websocket' | 'http' | 'rows' | 'labels', BadInputTally>;

export function emptyBadInputStats(): BadInputStats {
  const tally = () => ({ tried: 0, rejectedRight: 0, wrong: [] });
  return { websocket: tally(), http: tally(), rows: tally(), labels: tally() };
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
async function wsExchange(url: string, frames: ReadonlyArray<string | Buffer>, enough: (o: WsOutcome) => boolean, waitMs = 3000): Promise<WsOutcome> {
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

export async function websocketFlood(instance: ServiceInstance, secret: string, deployments: readonly string[], tally: BadInputTally): Promise<void> {
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
    ['unknown message type', [JSON.stringify({ type: 'drop_table', deploymentId: 'x' })], (o) => o.errors.includes('bad_message')],
    ['binary frame', [Buffer.from([0, 1, 2, 3])], (o) => o.errors.includes('bad_message')],
    ['random unicode', [randomUnicode(64)], (o) => o.errors.includes('bad_json') || o.errors.includes('bad_message')],
    ['unauthorised subscription', [subscribe(deployments[1] ?? 'other')], (o) => o.errors.includes('forbidden')],
    ['oversized frame', [JSON.stringify({ type: 'subscribe', deploymentId: 'x'.repeat(64 * 1024) })], (o) => o.closeCode === 1009],
    ['flood of bad frames', Array.from({ length: 25 }, () => 'nonsense'), (o) => o.closeCode === 1008],
  ];
  for (const [what, frames, ok] of cases) {
    const outcome = await wsExchange(url, frames, ok, 3000);
    note(tally, ok(outcome), `${what}: errors ${outcome.errors.join(',') || 'none'}, close ${outcome.closeCode}`);
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
    ['config with a wrong token', () => status('/traefik/dynamic', { headers: { authorization: 'Bearer wrong-token-0123456789' } }), [401]],
    ['route list with a wrong token', () => status('/traefik/routes', { headers: { authorization: 'Basic Zm9vOmJhcg==' } }), [401]],
    ['unknown path', () => status('/../../etc/passwd'), [404]],
    ['wrong method', () => status('/health', { method: 'DELETE' }), [404, 405]],
    ['body where none is taken', () => status('/traefik/dynamic', { method: 'POST', body: 'x'.repeat(200_000) }), [404, 405, 413]],
    ['plain GET of the websocket path', () => status('/ws/metrics'), [426]],
    ['header too large', () => rawRequest(instance.port, `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`), [431]],
    ['garbage request line', () => rawRequest(instance.port, `\u0000\u0001GARBAGE ${randomUnicode(20)}\r\n\r\n`), [400]],
    ['bad percent-encoding', () => rawRequest(instance.port, 'GET /traefik/%E0%A4%A HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), [400, 404]],
    ['injection in the path', () => status(`/traefik/dynamic/${encodeURIComponent("'; DROP TABLE deployment_routing; --")}`), [404]],
  ];
  for (const [what, request, expected] of cases) {
    const got = await request();
    note(tally, got !== undefined && expected.includes(got), `${what}: got ${got ?? 'no answer'}, want ${expected.join('/')}`);
  }
}

// --- routing rows and labels -------------------------------------------------------------------

export interface FuzzedRow {
  readonly id: string;
  readonly field: string;
  readonly values: Record<string, unknown>;
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
    ['middleware', { domain: `mw3-${d}`, middleware: { headers: { customRequestHeaders: { 'X-A': 'a\r\nInjected: 1' } } } }],
    ['deployment_id', { domain: `dep-${d}`, deployment_id: 'dep`) || Host(`evil.test' }],
  ];
  return rows.map(([field, values], n) => ({ id: id(n), field, values: { deployment_id: deploymentId, domain: d, target_port: 8080, ...values } }));
}

export async function insertFuzzedRows(db: pg.Pool, rows: readonly FuzzedRow[]): Promise<void> {
  for (const row of rows) {
    const values = { id: row.id, ...row.values };
    const columns = Object.keys(values);
    const params = Object.values(values).map((v) => (v !== null && typeof v === 'object' ? JSON.stringify(v) : v));
    await db.query(`INSERT INTO deployment_routing (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`, params);
  }
}

interface RouteStatus {
  id: string;
  state: string;
  field?: string;
}

/** Every fuzzed row must be listed as rejected, blaming the expected field, on this instance. */
export async function checkRowsRejected(instance: ServiceInstance, token: string, rows: readonly FuzzedRow[], tally: BadInputTally): Promise<void> {
  const response = await fetch(`${instance.baseUrl}/traefik/routes`, { headers: { authorization: `Bearer ${token}` } });
  const statuses = new Map(((await response.json()) as { routes: RouteStatus[] }).routes.map((s) => [s.id, s]));
  for (const row of rows) {
    const status = statuses.get(row.id);
    note(tally, status?.state === 'rejected' && status.field === row.field, `${row.id} (${row.field}): ${status ? `${status.state} ${status.field ?? ''}` : 'not listed'}`);
  }
}

/** A service whose deployment label tries to inject a rule; it must route nowhere. */
export async function createInjectingService(docker: Docker, image: string): Promise<void> {
  await docker.createService({
    Name: 'soak-evil-label',
    Labels: { [LABEL]: `x\`) || Host(\`${INJECTION_MARK}-label.test` },
    TaskTemplate: { ContainerSpec: { Image: image, Labels: { [LABEL]: `x\`) || Host(\`${INJECTION_MARK}-label.test` } }, Networks: [{ Target: NETWORK }] },
    Mode: { Replicated: { Replicas: 1 } },
  });
}

function randomUnicode(length: number, random: () => number = Math.random): string {
  const ranges: Array<[number, number]> = [[0x21, 0x7e], [0xa1, 0x24f], [0x590, 0x6ff], [0x200b, 0x202e], [0x4e00, 0x4fff], [0x1f300, 0x1f64f]];
  let out = '';
  for (let i = 0; i < length; i++) {
    const [from, to] = ranges[Math.floor(random() * ranges.length)]!;
    out += String.fromCodePoint(from + Math.floor(random() * (to - from)));
  }
  return out;
}
