/**
 * The router against the harness's real swarm and PostgreSQL: services and routing rows in,
 * Traefik config out (file and HTTP provider), through faults.
 */
import { readFile } from 'node:fs/promises';
import { mkdtempSync } from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTES_FILE, routeName } from '../../src/router/index.js';
import {
  missingTools,
  startPostgres,
  startSwarm,
  waitFor,
  type TestPostgres,
  type TestSwarm,
  listenOnLoopback,
} from '../harness/index.js';
import { buildRouterApp } from '../harness/router-app.js';

const skip = missingTools(['root', 'dockerd', 'docker', 'busybox', 'postgres']);
const TOKEN = 'test-token-0123456789abcdef';

type LoadBalancer = { servers: Array<{ url: string }> };
interface Http {
  routers?: Record<string, { rule: string; middlewares?: string[] }>;
  services?: Record<string, { loadBalancer: LoadBalancer }>;
}

describe.skipIf(skip)('router against a real swarm and PostgreSQL', () => {
  let postgres: TestPostgres;
  let swarm: TestSwarm;
  let app: FastifyInstance;
  let baseUrl: string;
  const dynamicDir = mkdtempSync('/tmp/swarm-edge-traefik-');
  const file = path.join(dynamicDir, ROUTES_FILE);

  beforeAll(async () => {
    [postgres, swarm] = await Promise.all([startPostgres(), startSwarm()]);
    await swarm.cli(['network', 'create', '-d', 'overlay', '--attachable', 'edge-net']);
    app = await buildRouterApp(swarm, {
      databaseUrl: postgres.url,
      dynamicDir,
      env: {
        TRAEFIK_HTTP_TOKEN: TOKEN,
        DISCOVERY_RESYNC_SECONDS: '5',
        TRAEFIK_TCP_ENTRYPOINTS: 'postgres',
        TRAEFIK_UDP_ENTRYPOINTS: 'game',
      },
    });
    baseUrl = (await listenOnLoopback(app)).url;
    // Migrations run in the background; the tests write rows, so wait for the schema.
    await waitFor(
      'postgres up',
      async () => {
        const health = (await (await fetch(`${baseUrl}/health`)).json()) as {
          dependencies: { postgres: { status: string } };
        };
        return health.dependencies.postgres.status === 'up';
      },
      30_000,
      100,
    );
  });
  afterAll(async () => {
    await app?.close();
    await Promise.all([postgres?.destroy(), swarm?.destroy()]);
  });

  async function readFileConfig(): Promise<Http> {
    return (parse(await readFile(file, 'utf8')) as { http: Http }).http;
  }
  async function readHttpConfig(): Promise<Http> {
    const response = await fetch(`${baseUrl}/traefik/dynamic`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(response.status).toBe(200);
    return ((await response.json()) as { http: Http }).http;
  }
  const servers = (http: Http, name: string) => http.services?.[name]?.loadBalancer.servers.map((s) => s.url) ?? [];
  const overlayServers = (http: Http, name: string) => servers(http, name).filter((u) => u.startsWith('http://10.'));

  async function createService(name: string, deploymentId: string, replicas: number): Promise<Docker.Service> {
    return swarm.docker.createService({
      Name: name,
      Labels: { 'cloud.obiente.deployment_id': deploymentId },
      TaskTemplate: { ContainerSpec: { Image: swarm.image }, Networks: [{ Target: 'edge-net' }] },
      Mode: { Replicated: { Replicas: replicas } },
    });
  }
  async function scale(service: Docker.Service, replicas: number): Promise<void> {
    const current = (await service.inspect()) as { Version: { Index: number }; Spec: Record<string, unknown> };
    await service.update({
      version: current.Version.Index,
      ...current.Spec,
      Mode: { Replicated: { Replicas: replicas } },
    });
  }
  /** What Swarm, the router's view of it, and both copies of the document say of a service and its route. */
  async function explainService(
    serviceName: string,
    routeId: string,
    documents: () => Promise<unknown>,
  ): Promise<string> {
    const tasks = (await swarm.docker.listTasks({ filters: { service: [serviceName] } })) as Array<{
      ID: string;
      DesiredState: string;
      Status: { State: string; Timestamp: string };
    }>;
    const health = (await (await fetch(`${baseUrl}/health`)).json()) as {
      dependencies: unknown;
      components: { router: { swarm: unknown } };
    };
    const listing = (await (
      await fetch(`${baseUrl}/traefik/routes`, { headers: { authorization: `Bearer ${TOKEN}` } })
    ).json()) as { routes: Array<{ id: string }> };
    return JSON.stringify({
      swarmTasks: tasks.map((t) => [t.ID, t.DesiredState, t.Status.State, t.Status.Timestamp]),
      route: listing.routes.find((r) => r.id === routeId),
      dependencies: health.dependencies,
      watcher: health.components.router.swarm,
      documents: await documents(),
      at: new Date().toISOString(),
    });
  }
  async function insertRow(
    id: string,
    deploymentId: string,
    domain: string,
    extra: Record<string, unknown> = {},
  ): Promise<void> {
    const fields: Record<string, unknown> = { id, deployment_id: deploymentId, domain, target_port: 8080, ...extra };
    const columns = Object.keys(fields);
    const values = Object.values(fields);
    await postgres.query(
      `INSERT INTO deployment_routing (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`,
      values,
    );
  }

  it('follows a service and its row through create, scale, domain change and removal', async () => {
    const service = await createService('web-a', 'dep-a', 1);
    await insertRow('row-a', 'dep-a', 'a.example.com');
    const name = routeName({ id: 'row-a', deploymentId: 'dep-a' });

    await waitFor(
      'route a with one server in the file',
      async () => overlayServers(await readFileConfig(), name).length === 1,
      60_000,
      100,
    );
    const viaHttp = await readHttpConfig();
    expect(viaHttp.routers?.[name]?.rule).toBe('Host(`a.example.com`)');
    expect(overlayServers(viaHttp, name)).toHaveLength(1);

    await scale(service, 3);
    await waitFor('3 servers', async () => overlayServers(await readFileConfig(), name).length === 3, 60_000, 100);

    await scale(service, 0);
    await waitFor(
      '503-only service',
      async () => {
        const http = await readFileConfig();
        return (
          overlayServers(http, name).length === 0 &&
          (http.routers?.[name]?.middlewares ?? []).includes('edge-unavailable')
        );
      },
      60_000,
      100,
    );

    await postgres.query(`UPDATE deployment_routing SET domain = 'b.example.com' WHERE id = 'row-a'`);
    await waitFor(
      'rule follows the domain',
      async () => (await readFileConfig()).routers?.[name]?.rule === 'Host(`b.example.com`)',
      10_000,
      50,
    );

    await postgres.query(`DELETE FROM deployment_routing WHERE id = 'row-a'`);
    await waitFor(
      'route removed with its row',
      async () => (await readFileConfig()).routers?.[name] === undefined,
      10_000,
      50,
    );

    await insertRow('row-a2', 'dep-a', 'a2.example.com');
    const name2 = routeName({ id: 'row-a2', deploymentId: 'dep-a' });
    await waitFor('route back', async () => (await readFileConfig()).routers?.[name2] !== undefined, 10_000, 50);
    await service.remove();
    await waitFor(
      'route removed with its service',
      async () => (await readFileConfig()).routers?.[name2] === undefined,
      30_000,
      100,
    );
    await postgres.query(`DELETE FROM deployment_routing`);
  });

  it('rejects bad rows one by one while valid rows still route, and lists why', async () => {
    const service = await createService('web-good', 'dep-good', 1);
    const bad: Array<[string, string, Record<string, unknown>]> = [
      ['bad-inject', 'x.com`) || Host(`victim.com', {}],
      ['bad-backtick', 'a`b.example.com', {}],
      ['bad-space', 'a b.example.com', {}],
      ['bad-at', 'a@b.example.com', {}],
      ['bad-label', `${'a'.repeat(300)}.example.com`, {}],
      ['bad-port', 'port.example.com', { target_port: 70000 }],
      ['bad-middleware', 'mw.example.com', { middleware: JSON.stringify({ forwardAuth: { address: 'http://evil' } }) }],
    ];
    for (const [id, domain, extra] of bad) await insertRow(id, 'dep-good', domain, extra);
    await insertRow('good', 'dep-good', 'good.example.com');
    const good = routeName({ id: 'good', deploymentId: 'dep-good' });
    await waitFor('the good route', async () => overlayServers(await readFileConfig(), good).length === 1, 60_000, 100);

    const http = await readFileConfig();
    expect(Object.keys(http.routers ?? {})).toEqual([good]);
    expect(await readFile(file, 'utf8')).not.toContain('victim');
    const listing = (await (
      await fetch(`${baseUrl}/traefik/routes`, { headers: { authorization: `Bearer ${TOKEN}` } })
    ).json()) as {
      routes: Array<{ id: string; state: string; field?: string }>;
    };
    const rejected = Object.fromEntries(
      listing.routes.filter((r) => r.state === 'rejected').map((r) => [r.id, r.field]),
    );
    expect(rejected).toEqual({
      'bad-inject': 'domain',
      'bad-backtick': 'domain',
      'bad-space': 'domain',
      'bad-at': 'domain',
      'bad-label': 'domain',
      'bad-port': 'target_port',
      'bad-middleware': 'middleware',
    });
    const metrics = await (await fetch(`${baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/swarm_edge_routes_rejected 7/);
    expect((await fetch(`${baseUrl}/traefik/dynamic`)).status).toBe(401);
    await service.remove();
    await postgres.query(`DELETE FROM deployment_routing`);
  });

  it('keeps deployment_locations and node_metadata true to the cluster', async () => {
    const service = await createService('web-loc', 'dep-loc', 2);
    await waitFor(
      'two locations',
      async () => {
        const rows = await postgres.query(
          `SELECT count(*)::int AS n FROM deployment_locations WHERE deployment_id = 'dep-loc' AND status = 'running'`,
        );
        return (rows.rows[0] as { n: number }).n === 2;
      },
      60_000,
      200,
    );
    const [node] = (await swarm.docker.listNodes()) as Array<{ ID: string }>;
    await waitFor(
      'node count matches its locations',
      async () => {
        const nodes = await postgres.query<{ id: string; role: string; deployment_count: number; located: number }>(
          `SELECT id, role, deployment_count, (SELECT count(*)::int FROM deployment_locations l WHERE l.node_id = n.id) AS located FROM node_metadata n`,
        );
        return (
          nodes.rows.length === 1 &&
          nodes.rows[0]!.id === node!.ID &&
          nodes.rows[0]!.role === 'manager' &&
          nodes.rows[0]!.deployment_count === nodes.rows[0]!.located
        );
      },
      10_000,
      200,
    );
    await service.remove();
    await waitFor(
      'locations removed',
      async () => {
        const rows = await postgres.query(
          `SELECT count(*)::int AS n FROM deployment_locations WHERE deployment_id = 'dep-loc'`,
        );
        return (rows.rows[0] as { n: number }).n === 0;
      },
      30_000,
      200,
    );
  });

  it('never lets a reader see a partial or empty file during rapid churn', async () => {
    const service = await createService('web-churn', 'dep-churn', 1);
    let reads = 0;
    let bad = 0;
    let stop = false;
    const reader = (async () => {
      while (!stop) {
        const text = await readFile(file, 'utf8').catch(() => '');
        reads += 1;
        try {
          const parsed = parse(text) as { http?: { middlewares?: object } } | null;
          if (!parsed?.http?.middlewares) bad += 1;
        } catch {
          bad += 1;
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    for (let i = 0; i < 60; i++) {
      await insertRow(`churn-${i}`, 'dep-churn', `c${i}.example.com`);
      if (i % 3 === 0)
        await postgres.query(`UPDATE deployment_routing SET path_prefix = '/p${i}' WHERE id = 'churn-${i}'`);
      if (i % 5 === 0) await postgres.query(`DELETE FROM deployment_routing WHERE id = 'churn-${i}'`);
    }
    await waitFor(
      'churn published',
      async () => Object.keys((await readFileConfig()).routers ?? {}).length === 48,
      20_000,
      50,
    );
    stop = true;
    await reader;
    expect(reads).toBeGreaterThan(100);
    expect(bad).toBe(0);
    await service.remove();
    await postgres.query(`DELETE FROM deployment_routing`);
  });

  it('switches blue to green in one transaction (a reader of the file sees the old split, then the new one, nothing between), then mirrors green to blue', async () => {
    const [blue, green] = [
      await createService('web-blue', 'dep-blue', 1),
      await createService('web-green', 'dep-green', 1),
    ];
    await insertRow('bg-blue', 'dep-blue', 'bg.example.com', { weight: 100 });
    await insertRow('bg-green', 'dep-green', 'bg.example.com', { weight: 0 });
    const leader = routeName({ id: 'bg-blue', deploymentId: 'dep-blue' });
    const greenName = routeName({ id: 'bg-green', deploymentId: 'dep-green' });
    type Weighted = { weighted: { services: Array<{ name: string; weight: number }> } };
    const weights = (http: Http) =>
      ((http.services?.[`${leader}-split`] as unknown as Weighted | undefined)?.weighted.services ?? [])
        .map((s) => `${s.name === leader ? 'blue' : s.name === greenName ? 'green' : '?'}=${s.weight}`)
        .sort()
        .join(',');
    await waitFor(
      'the split with both servers',
      async () => {
        const http = await readFileConfig();
        return (
          weights(http) === 'blue=100,green=0' &&
          overlayServers(http, leader).length === 1 &&
          overlayServers(http, greenName).length === 1
        );
      },
      60_000,
      100,
    );
    const seen: string[] = [];
    let stop = false;
    const reader = (async () => {
      while (!stop) {
        const text = await readFile(file, 'utf8').catch(() => '');
        const state = weights((parse(text) as { http: Http }).http);
        if (seen.at(-1) !== state) seen.push(state);
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    const client = new pg.Client({ connectionString: postgres.url });
    await client.connect();
    await client.query('BEGIN');
    await client.query(`UPDATE deployment_routing SET weight = 0 WHERE id = 'bg-blue'`);
    // Long enough for a reload in between to be seen, if one could see half the switch.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await client.query(`UPDATE deployment_routing SET weight = 100 WHERE id = 'bg-green'`);
    await client.query('COMMIT');
    await client.end();
    await waitFor('the new split', () => seen.at(-1) === 'blue=0,green=100', 20_000, 20);
    await new Promise((resolve) => setTimeout(resolve, 500));
    stop = true;
    await reader;
    expect(seen).toEqual(['blue=100,green=0', 'blue=0,green=100']);

    // Blue, out of the split, becomes a shadow of it: a copy of every request, answers dropped.
    await postgres.query(`UPDATE deployment_routing SET weight = NULL, mirror_percent = 100 WHERE id = 'bg-blue'`);
    const blueName = routeName({ id: 'bg-blue', deploymentId: 'dep-blue' });
    const mirrored = JSON.stringify({
      // Green alone still carries a weight: its split (of one) is what is mirrored.
      mirroring: { maxBodySize: 1_048_576, mirrors: [{ name: blueName, percent: 100 }], service: `${greenName}-split` },
    });
    await waitFor(
      'green mirrored to blue, in the file and the HTTP provider',
      async () =>
        (await Promise.all([readFileConfig(), readHttpConfig()])).every(
          (http) =>
            JSON.stringify(http.services?.[`${greenName}-mirror`]) === mirrored &&
            (http.routers?.[greenName] as { service?: string } | undefined)?.service === `${greenName}-mirror`,
        ),
      20_000,
      100,
    );
    // A change of the share alone is a change of the row.
    await postgres.query(`UPDATE deployment_routing SET mirror_percent = 30 WHERE id = 'bg-blue'`);
    await waitFor(
      'a share of 30 %',
      async () => JSON.stringify((await readFileConfig()).services?.[`${greenName}-mirror`]).includes('"percent":30'),
      20_000,
      100,
    );
    await Promise.all([blue.remove(), green.remove()]);
    await postgres.query(`DELETE FROM deployment_routing`);
  });

  it('publishes TCP routes by SNI and UDP routes on their entry points, in the file and the HTTP provider', async () => {
    type Stream = {
      routers: Record<string, { rule?: string; entryPoints: string[]; tls?: object }>;
      services: Record<string, { loadBalancer: { servers: Array<{ address: string }> } }>;
    };
    const readBoth = async () => {
      const text = await readFile(file, 'utf8');
      const response = await fetch(`${baseUrl}/traefik/dynamic`, { headers: { authorization: `Bearer ${TOKEN}` } });
      return [parse(text), await response.json()] as Array<{ tcp?: Stream; udp?: Stream }>;
    };
    const db = await createService('db-tcp', 'dep-db', 2);
    const game = await createService('game-udp', 'dep-game', 1);
    await insertRow('tcp-db', 'dep-db', 'db.example.com', { protocol: 'tcp', target_port: 5432, ssl_enabled: true });
    await insertRow('tcp-plain', 'dep-db', 'plain.example.com', {
      protocol: 'tcp',
      target_port: 5432,
      entry_point: 'postgres',
    });
    await insertRow('udp-game', 'dep-game', 'game.example.com', {
      protocol: 'udp',
      target_port: 27015,
      entry_point: 'game',
    });
    // Hostile and impossible rows, each refused with its field.
    await insertRow('udp-second', 'dep-db', 'db.example.com', { protocol: 'udp', entry_point: 'game' });
    await insertRow('tcp-sni-inject', 'dep-db', 'x.example.com`) || HostSNI(`*', {
      protocol: 'tcp',
      ssl_enabled: true,
    });
    await insertRow('tcp-lookalike-ep', 'dep-db', 'db.example.com', { protocol: 'tcp', entry_point: 'Postgres' });
    const names = {
      db: routeName({ id: 'tcp-db', deploymentId: 'dep-db' }),
      plain: routeName({ id: 'tcp-plain', deploymentId: 'dep-db' }),
      game: routeName({ id: 'udp-game', deploymentId: 'dep-game' }),
    };
    await waitFor(
      'TCP and UDP routes with their replicas in both copies',
      async () =>
        (await readBoth()).every(
          (doc) =>
            doc.tcp?.services[names.db]?.loadBalancer.servers.length === 2 &&
            doc.tcp.services[names.plain]?.loadBalancer.servers.length === 2 &&
            doc.udp?.services[names.game]?.loadBalancer.servers.length === 1,
        ),
      60_000,
      100,
    );
    for (const doc of await readBoth()) {
      expect(doc.tcp!.routers[names.db]).toMatchObject({
        entryPoints: ['websecure'],
        rule: 'HostSNI(`db.example.com`)',
        tls: { certResolver: 'letsencrypt' },
      });
      expect(doc.tcp!.routers[names.plain]).toMatchObject({ entryPoints: ['postgres'], rule: 'HostSNI(`*`)' });
      expect(
        doc.tcp!.services[names.db]!.loadBalancer.servers.every((s) => /^10\.\d+\.\d+\.\d+:5432$/.test(s.address)),
      ).toBe(true);
      expect(Object.keys(doc.udp!.routers)).toEqual([names.game]);
      expect(doc.udp!.routers[names.game]).toEqual({ entryPoints: ['game'], service: names.game });
    }
    expect(await readFile(file, 'utf8')).not.toContain('HostSNI(`*`) ||');
    const listing = (await (
      await fetch(`${baseUrl}/traefik/routes`, { headers: { authorization: `Bearer ${TOKEN}` } })
    ).json()) as { routes: Array<{ id: string; state: string; field?: string }> };
    expect(
      Object.fromEntries(listing.routes.filter((r) => r.state === 'rejected').map((r) => [r.id, r.field])),
    ).toEqual({ 'udp-second': 'entry_point', 'tcp-sni-inject': 'domain', 'tcp-lookalike-ep': 'entry_point' });

    // Scaled to zero: the UDP route leaves the document (no 503 to answer with), and comes back.
    const explain = () =>
      explainService('game-udp', 'udp-game', async () => (await readBoth()).map((doc) => doc.udp ?? null));
    await scale(game, 0);
    await waitFor(
      'no UDP section',
      async () => (await readBoth()).every((doc) => doc.udp === undefined),
      60_000,
      100,
      explain,
    );
    await scale(game, 1);
    await waitFor(
      'the UDP route back',
      async () => (await readBoth()).every((doc) => doc.udp !== undefined),
      60_000,
      100,
      explain,
    );
    await Promise.all([db.remove(), game.remove()]);
    await postgres.query(`DELETE FROM deployment_routing`);
  }, 120_000);

  it('follows the live swarm with the last rows read while PostgreSQL is down, says so, and resumes when it is back', async () => {
    const service = await createService('web-pg', 'dep-pg', 1);
    await insertRow('row-pg', 'dep-pg', 'pg.example.com');
    const name = routeName({ id: 'row-pg', deploymentId: 'dep-pg' });
    await waitFor('route pg', async () => overlayServers(await readFileConfig(), name).length === 1, 60_000, 100);

    await postgres.stop();
    await waitFor(
      'degraded',
      async () => {
        const health = (await (await fetch(`${baseUrl}/health`)).json()) as { status: string };
        return health.status === 'degraded';
      },
      30_000,
      200,
    );
    // Topology still flows: routing to tasks that exist matters more than fresh rows.
    await scale(service, 2);
    await waitFor(
      '2 servers from the last rows read',
      async () => overlayServers(await readFileConfig(), name).length === 2,
      60_000,
      200,
    );
    const health = (await (await fetch(`${baseUrl}/health`)).json()) as {
      dependencies: Record<string, { status: string; detail?: string }>;
      components: { router: { stale: boolean } };
    };
    expect(health.dependencies.routing_table?.status).toBe('down');
    expect(health.components.router.stale).toBe(true);
    const listing = (await (
      await fetch(`${baseUrl}/traefik/routes`, { headers: { authorization: `Bearer ${TOKEN}` } })
    ).json()) as { stale: boolean };
    expect(listing.stale).toBe(true);

    await postgres.start();
    await insertRow('row-pg2', 'dep-pg', 'pg2.example.com');
    const second = routeName({ id: 'row-pg2', deploymentId: 'dep-pg' });
    await waitFor(
      'row changes resume',
      async () => overlayServers(await readFileConfig(), second).length === 2,
      60_000,
      200,
    );
    await waitFor(
      'fresh again',
      async () =>
        !((await (await fetch(`${baseUrl}/health`)).json()) as { components: { router: { stale: boolean } } })
          .components.router.stale,
      30_000,
      200,
    );
    await service.remove();
    await postgres.query(`DELETE FROM deployment_routing`);
  });

  it('reports a schema error as the routing table failing, not PostgreSQL down, without a retry loop', async () => {
    const transactions = async () => {
      const { rows } = await postgres.query<{ n: string }>(
        `SELECT (xact_commit + xact_rollback)::text AS n FROM pg_stat_database WHERE datname = current_database()`,
      );
      return Number(rows[0]!.n);
    };
    await postgres.query('ALTER TABLE deployment_routing RENAME COLUMN domain TO host');
    try {
      await postgres.query(
        `INSERT INTO deployment_routing (id, deployment_id, host, target_port) VALUES ('row-schema', 'dep-x', 'x.example.com', 80)`,
      );
      await waitFor(
        'routing table failing',
        async () => {
          const health = (await (await fetch(`${baseUrl}/health`)).json()) as {
            dependencies: Record<string, { status: string; detail?: string }>;
          };
          return (
            health.dependencies.routing_table?.status === 'down' &&
            /domain/.test(health.dependencies.routing_table.detail ?? '')
          );
        },
        30_000,
        200,
      );
      const before = await transactions();
      // Row changes keep arriving: none may cut the backoff short.
      for (let i = 0; i < 20; i++)
        await postgres.query(`UPDATE deployment_routing SET target_port = ${81 + i} WHERE id = 'row-schema'`);
      await new Promise((resolve) => setTimeout(resolve, 8_000));
      const spent = (await transactions()) - before;
      // 20 updates and our own queries, the probe every 5 s, a few backed-off reloads: not thousands.
      expect(spent).toBeLessThan(100);
      const health = (await (await fetch(`${baseUrl}/health`)).json()) as {
        status: string;
        dependencies: Record<string, { status: string }>;
      };
      expect(health.dependencies.postgres?.status).toBe('up');
      expect(health.status).toBe('degraded');
    } finally {
      await postgres.query('ALTER TABLE deployment_routing RENAME COLUMN host TO domain');
      await postgres.query(`DELETE FROM deployment_routing`);
    }
    await waitFor(
      'routing table readable again',
      async () => {
        const health = (await (await fetch(`${baseUrl}/health`)).json()) as {
          dependencies: Record<string, { status: string }>;
        };
        return health.dependencies.routing_table?.status === 'up';
      },
      30_000,
      200,
    );
  });

  it('reconnects after dockerd restarts and converges to the truth with nothing stale', async () => {
    const service = await createService('web-restart', 'dep-restart', 2);
    await insertRow('row-restart', 'dep-restart', 'restart.example.com');
    const name = routeName({ id: 'row-restart', deploymentId: 'dep-restart' });
    await waitFor('2 servers', async () => overlayServers(await readFileConfig(), name).length === 2, 60_000, 100);

    await swarm.restart();
    const truth = async () => {
      const tasks = (await swarm.docker.listTasks({
        filters: { service: ['web-restart'], 'desired-state': ['running'] },
      })) as Array<{
        Status: { State: string };
        NetworksAttachments?: Array<{ Network: { Spec: { Name: string } }; Addresses: string[] }>;
      }>;
      return tasks
        .filter((t) => t.Status.State === 'running')
        .flatMap((t) =>
          (t.NetworksAttachments ?? [])
            .filter((a) => a.Network.Spec.Name === 'edge-net')
            .map((a) => `http://${a.Addresses[0]!.split('/')[0]}:8080`),
        )
        .sort();
    };
    await waitFor(
      'file equals the truth after the restart',
      async () => {
        const expected = await truth();
        return (
          expected.length === 2 &&
          JSON.stringify(overlayServers(await readFileConfig(), name).sort()) === JSON.stringify(expected)
        );
      },
      120_000,
      250,
    );
    await service.remove();
  });
});
