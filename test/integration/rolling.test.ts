/**
 * Zero-downtime rolling updates on the harness swarm. The upstream traps SIGTERM and keeps
 * serving for 2 s before it exits (the usual graceful shutdown), with a 10 s stop grace period.
 * Every copy the router publishes (the routes file, the HTTP provider, the Redis tree) is polled
 * every 20 ms while the service rolls:
 *   - stop-first: no copy still lists a server after its container exited (exits from the
 *     daemon's own event log, matched to task addresses);
 *   - start-first with a healthcheck: no copy is ever without a server, and none lists an exited
 *     container either.
 */
import { readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTES_FILE } from '../../src/router/index.js';
import {
  missingTools,
  startPostgres,
  startRedis,
  startSwarm,
  waitFor,
  type TestPostgres,
  type TestRedis,
  type TestSwarm,
  listenOnLoopback,
} from '../harness/index.js';
import { buildRouterApp } from '../harness/router-app.js';

const skip = missingTools(['root', 'dockerd', 'docker', 'busybox', 'postgres', 'redis-server']);
const TOKEN = 'rolling-token-0123456789abcdef';
/** Serves (waits, without polling) until SIGTERM, then 2 s more, then exits 0. */
const GRACEFUL = ['sh', '-c', 'trap "sleep 2; exit 0" TERM; while true; do sleep 3600 & wait $!; done'];
const SERVER = /http:\/\/(\d+\.\d+\.\d+\.\d+):8080/g;

interface Poll {
  copy: 'file' | 'http' | 'redis';
  /** When the read began: what it saw is at least this recent. */
  startedAt: number;
  /** When the reads of every copy had ended: nothing it saw is more recent. */
  endedAt: number;
  ips: Set<string>;
}

interface TaskJson {
  ID: string;
  Status: { State: string; ContainerStatus?: { ContainerID?: string } };
  NetworksAttachments?: Array<{ Network: { Spec: { Name: string } }; Addresses: string[] }>;
}

describe.skipIf(skip)('zero-downtime rolling updates', () => {
  let postgres: TestPostgres;
  let swarm: TestSwarm;
  let redis: TestRedis;
  let reader: Redis;
  let app: FastifyInstance;
  let baseUrl: string;
  const dynamicDir = mkdtempSync('/tmp/swarm-edge-rolling-');
  const file = path.join(dynamicDir, ROUTES_FILE);

  beforeAll(async () => {
    [postgres, swarm, redis] = await Promise.all([startPostgres(), startSwarm(), startRedis()]);
    await swarm.cli(['network', 'create', '-d', 'overlay', 'edge-net']);
    app = await buildRouterApp(swarm, {
      databaseUrl: postgres.url,
      dynamicDir,
      env: { TRAEFIK_HTTP_TOKEN: TOKEN, REDIS_URL: redis.url, TRAEFIK_REDIS_ROOT: 'traefik' },
    });
    baseUrl = (await listenOnLoopback(app)).url;
    reader = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    await waitFor(
      'schema',
      async () => (await postgres.query(`SELECT to_regclass('deployment_routing') AS t`)).rows[0]?.t !== null,
      30_000,
      100,
    );
  }, 120_000);
  afterAll(async () => {
    reader?.disconnect();
    await app?.close();
    await Promise.all([postgres?.destroy(), swarm?.destroy(), redis?.destroy()]);
  });

  const ipsIn = (text: string) => new Set([...text.matchAll(SERVER)].map((m) => m[1]!));
  const readCopies = async (): Promise<Poll[]> => {
    const startedAt = Date.now();
    let fileText = '';
    try {
      fileText = readFileSync(file, 'utf8');
    } catch {
      // Not written yet.
    }
    const http = await fetch(`${baseUrl}/traefik/dynamic`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const httpText = http.ok ? await http.text() : '';
    const keys = await reader.keys('traefik/http/services/*/loadbalancer/servers/*/url');
    const urls = keys.length > 0 ? await reader.mget(...keys) : [];
    const endedAt = Date.now();
    return [
      { copy: 'file', startedAt, endedAt, ips: ipsIn(fileText) },
      { copy: 'http', startedAt, endedAt, ips: ipsIn(httpText) },
      { copy: 'redis', startedAt, endedAt, ips: ipsIn(urls.join(' ')) },
    ];
  };
  /** Polls every copy every 20 ms until stopped. */
  const pollCopies = () => {
    const polls: Poll[] = [];
    let running = true;
    const done = (async () => {
      while (running) {
        polls.push(...(await readCopies()));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    return {
      polls,
      stop: async () => {
        running = false;
        await done;
      },
    };
  };
  const tasksOf = async (service: string) =>
    (await swarm.docker.listTasks({ filters: { service: [service] } })) as TaskJson[];
  const ipOf = (task: TaskJson) =>
    task.NetworksAttachments?.find((a) => a.Network.Spec.Name === 'edge-net')?.Addresses[0]?.split('/')[0];
  /** The daemon's container events since `since` (die: exits), with the task address of each. */
  const containerEvents = async (
    service: string,
    since: number,
    event: 'die' | 'kill' | 'start' | 'health_status: healthy',
  ) => {
    const stream = await swarm.docker.getEvents({
      since: Math.floor(since / 1000) - 1,
      until: Math.ceil(Date.now() / 1000) + 1,
      filters: { type: ['container'], event: [event] },
    });
    let text = '';
    for await (const chunk of stream) text += chunk.toString();
    const byContainer = new Map<string, string>();
    for (const task of await tasksOf(service)) {
      const id = task.Status.ContainerStatus?.ContainerID;
      const ip = ipOf(task);
      if (id && ip) byContainer.set(id, ip);
    }
    return text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as { id: string; timeNano: number })
      .map((event) => ({ id: event.id, at: event.timeNano / 1e6, ip: byContainer.get(event.id) }))
      .filter((exit) => exit.at >= since && exit.ip !== undefined) as Array<{ id: string; at: number; ip: string }>;
  };
  const exits = (service: string, since: number) => containerEvents(service, since, 'die');
  /**
   * Polls that listed a new container's address before it served (started; healthy, with a
   * healthcheck). An address can be reused: only polls after its previous holder exited count.
   */
  const earlyServers = (
    polls: Poll[],
    serving: Array<{ at: number; ip: string }>,
    exited: Array<{ at: number; ip: string }>,
  ) =>
    polls.filter((p) =>
      serving.some((s) => {
        const freedAt = Math.max(0, ...exited.filter((e) => e.ip === s.ip && e.at < s.at).map((e) => e.at));
        return p.startedAt > freedAt && p.endedAt < s.at && p.ips.has(s.ip);
      }),
    );
  /** Polls that began after a container exited and still listed its address. */
  const lateServers = (polls: Poll[], exited: Array<{ at: number; ip: string }>) =>
    polls.filter((p) => exited.some((e) => p.startedAt > e.at && p.ips.has(e.ip)));

  const roll = async (name: string, update: (spec: Record<string, unknown>) => void) => {
    const service = swarm.docker.getService(name);
    const current = (await service.inspect()) as { Version: { Index: number }; Spec: Record<string, unknown> };
    update(current.Spec);
    await service.update({ version: current.Version.Index, ...current.Spec });
  };
  const converged = (name: string, replicas: number, before: Set<string>) =>
    waitFor(
      `${name} rolled: ${replicas} new tasks running and published everywhere`,
      async () => {
        const fresh = (await tasksOf(name)).filter((t) => !before.has(t.ID) && t.Status.State === 'running');
        if (fresh.length < replicas) return false;
        const copies = await readCopies();
        return copies.every((c) => fresh.every((t) => c.ips.has(ipOf(t)!)));
      },
      120_000,
      200,
    );

  async function deploy(name: string, options: { order: 'stop-first' | 'start-first'; healthcheck: boolean }) {
    await postgres.query(
      `INSERT INTO deployment_routing (id, deployment_id, domain, target_port) VALUES ($1, $1, $2, 8080)`,
      [name, `${name}.example.com`],
    );
    await swarm.docker.createService({
      Name: name,
      Labels: { 'cloud.obiente.deployment_id': name },
      TaskTemplate: {
        ContainerSpec: {
          Image: swarm.image,
          Command: GRACEFUL,
          StopGracePeriod: 10_000_000_000,
          ...(options.healthcheck
            ? { Healthcheck: { Test: ['CMD', 'true'], Interval: 500_000_000, StartPeriod: 1_000_000_000, Retries: 3 } }
            : {}),
        },
        Networks: [{ Target: 'edge-net' }],
      },
      Mode: { Replicated: { Replicas: 2 } },
      UpdateConfig: { Parallelism: 1, Order: options.order, Delay: 0 },
    });
    await converged(name, 2, new Set());
    return new Set((await tasksOf(name)).map((t) => t.ID));
  }

  it('stop-first: every old server leaves every copy before its container exits', async () => {
    const before = await deploy('roll-stop', { order: 'stop-first', healthcheck: false });
    const t0 = Date.now();
    const poller = pollCopies();
    await roll('roll-stop', (spec) => {
      const template = spec.TaskTemplate as { ContainerSpec: { Env?: string[] } };
      template.ContainerSpec.Env = ['ROLL=1'];
    });
    await converged('roll-stop', 2, before);
    // The last old container exits 2 s after its SIGTERM: keep polling past it.
    await waitFor('both old containers exited', async () => (await exits('roll-stop', t0)).length >= 2, 30_000, 200);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await poller.stop();
    const exited = await exits('roll-stop', t0);
    expect(exited.length).toBe(2);
    expect(poller.polls.length).toBeGreaterThan(100);
    expect(lateServers(poller.polls, exited)).toEqual([]);
    const started = await containerEvents('roll-stop', t0, 'start');
    expect(started.length).toBe(2);
    expect(earlyServers(poller.polls, started, exited)).toEqual([]);
    // And each old server was gone from every copy well before its exit (the 2 s of grace).
    for (const exit of exited) {
      for (const copy of ['file', 'http', 'redis'] as const) {
        const lastSeen = Math.max(
          ...poller.polls.filter((p) => p.copy === copy && p.ips.has(exit.ip)).map((p) => p.startedAt),
        );
        expect(exit.at - lastSeen).toBeGreaterThan(500);
      }
    }
    // The router took each out at its container's SIGTERM (the `kill` event), not at a later
    // task list: stop hints recorded, and confirmed by the managers since.
    expect((await containerEvents('roll-stop', t0, 'kill')).length).toBe(2);
    await waitFor(
      'stop hints confirmed',
      async () => {
        const health = (await app.inject({ method: 'GET', url: '/health' })).json<{
          components: { router: { swarm: { stopHints: { recorded: number; confirmed: number; refuted: number } } } };
        }>();
        const hints = health.components.router.swarm.stopHints;
        return hints.recorded >= 2 && hints.confirmed >= 2 && hints.refuted === 0;
      },
      10_000,
      100,
    );
  }, 180_000);

  it('start-first with a healthcheck: never zero servers, never an exited one', async () => {
    const before = await deploy('roll-start', { order: 'start-first', healthcheck: true });
    const t0 = Date.now();
    const poller = pollCopies();
    await roll('roll-start', (spec) => {
      const template = spec.TaskTemplate as { ContainerSpec: { Env?: string[] } };
      template.ContainerSpec.Env = ['ROLL=2'];
    });
    await converged('roll-start', 2, before);
    await waitFor('both old containers exited', async () => (await exits('roll-start', t0)).length >= 2, 30_000, 200);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await poller.stop();
    const exited = await exits('roll-start', t0);
    expect(exited.length).toBe(2);
    // The other test's service is published too: count this service's addresses only.
    const mine = new Set((await tasksOf('roll-start')).map(ipOf).filter((ip) => ip !== undefined));
    const empty = poller.polls.filter((p) => ![...p.ips].some((ip) => mine.has(ip)));
    expect(empty).toEqual([]);
    expect(lateServers(poller.polls, exited)).toEqual([]);
    // Published only once healthy, though the container runs (and its task is `starting`) before.
    const healthy = await containerEvents('roll-start', t0, 'health_status: healthy');
    expect(healthy.length).toBeGreaterThanOrEqual(2);
    expect(earlyServers(poller.polls, healthy, exited)).toEqual([]);
  }, 180_000);
});
