/**
 * Node health against the real host: the sampler's figures agree with independent reads taken at
 * the same moment (/proc/loadavg, `free -b`, `df -B1`); missing or unreadable files are reported
 * once and the rest goes on; this node's usage in node_metadata is written next to the router's
 * rows of the same table, both churning, neither undoing the other; and, through buildApp on a
 * real swarm, a busy container's usage reaches deployment_locations within a minute while the
 * node's minutes, history and feed follow.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, migrate, migrations } from '../../src/db/index.js';
import { LocationsWriter, type Topology } from '../../src/discovery/index.js';
import { HostSampler, type HostProblem } from '../../src/nodes/index.js';
import { LocationUsage, writeLocationUsage } from '../../src/nodes/location-usage.js';
import { MinuteUsage, writeNodeUsage } from '../../src/nodes/node-usage.js';
import type { ContainerHealth, Sample } from '../../src/metrics/index.js';
import { SignJWT } from 'jose';
import { WebSocket } from 'ws';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import {
  missingTools,
  startPostgres,
  startSwarm,
  waitFor,
  type TestPostgres,
  type TestSwarm,
  listenOnLoopback,
} from '../harness/index.js';
import { swarmNode, topologyOf } from '../fixtures/swarm-topology.js';

const log = pino({ level: 'silent' });

describe('host sampler on this machine', () => {
  it('agrees with /proc/loadavg, free -b and df -B1 read at the same moment', async () => {
    const problems: HostProblem[] = [];
    const sampler = new HostSampler({ procRoot: '/proc', diskPaths: ['/'] }, { onProblem: (p) => problems.push(p) });
    await sampler.sample();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const sample = await sampler.sample();
    const loadavg = readFileSync('/proc/loadavg', 'utf8').split(' ').map(Number);
    const free = execFileSync('free', ['-b'], { encoding: 'utf8' });
    const mem = free
      .split('\n')
      .find((l) => l.startsWith('Mem:'))!
      .trim()
      .split(/\s+/)
      .map(Number);
    const df = execFileSync('df', ['-B1', '--output=size,used', '/'], { encoding: 'utf8' }).trim().split('\n')[1]!;
    const [size, used] = df.trim().split(/\s+/).map(Number) as [number, number];
    sampler.close();

    // The load average changes every 5 s at most, by little.
    expect(Math.abs(sample.load1! - loadavg[0]!)).toBeLessThanOrEqual(0.3);
    expect(sample.memoryTotalBytes).toBe(mem[1]); // free's total is MemTotal
    // free's "available" is MemAvailable, read a few ms later: within 2 % of memory.
    expect(Math.abs(sample.memoryAvailableBytes! - mem[6]!)).toBeLessThanOrEqual(0.02 * mem[1]!);
    expect(sample.disks[0]!.totalBytes).toBe(size);
    expect(Math.abs(sample.disks[0]!.usedBytes - used)).toBeLessThanOrEqual(Math.max(0.01 * size, 64 * 2 ** 20));
    expect(sample.cpus).toBe(os.cpus().length);
    expect(sample.cpuPercent).toBeGreaterThanOrEqual(0);
    expect(sample.cpuPercent).toBeLessThanOrEqual(100);
    expect(sample.diskReadRate).not.toBeNull();
    expect(problems.filter((p) => p.part !== 'net/dev' && p.part !== 'diskstats')).toEqual([]);
  });

  it('reports a missing or unreadable file once, and reads the rest', async () => {
    const proc = mkdtempSync('/tmp/swarm-edge-proc-');
    // Copied by reading: procfs files have size 0, so a copy by size would be empty.
    for (const file of ['stat', 'loadavg', 'meminfo'])
      writeFileSync(path.join(proc, file), readFileSync(`/proc/${file}`));
    mkdirSync(path.join(proc, '1', 'net'), { recursive: true });
    const problems: HostProblem[] = [];
    const sampler = new HostSampler(
      { procRoot: proc, diskPaths: ['/', '/nonexistent-mount-point'] },
      { onProblem: (p) => problems.push(p) },
    );
    for (let i = 0; i < 3; i++) {
      const sample = await sampler.sample();
      expect(sample.load1).not.toBeNull();
      expect(sample.memoryTotalBytes).not.toBeNull();
      expect(sample.diskReadBytes).toBeNull();
      expect(sample.netRxBytes).toBeNull();
      expect(sample.disks.map((d) => d.path)).toEqual(['/']);
    }
    expect(problems.map((p) => p.part).sort()).toEqual(['diskstats', 'net/dev', 'statfs /nonexistent-mount-point']);
    expect(sampler.problems()).toHaveLength(3);
    sampler.close();
  });
});

const skip = missingTools(['root', 'postgres']);

describe.skipIf(skip)('node usage in node_metadata', () => {
  let postgres: TestPostgres;
  let pool: pg.Pool;
  beforeAll(async () => {
    postgres = await startPostgres();
    pool = createPool({ connectionString: postgres.url, applicationName: 'test', statementTimeoutMs: 10_000 }, log);
    await migrate(pool, migrations);
  }, 120_000);
  afterAll(async () => {
    await pool?.end();
    await postgres?.stop();
  });

  it("writes this node's usage beside the router's rows, both churning, neither undoing the other", async () => {
    const writer = new LocationsWriter({ pool, isDatabaseReady: () => true, log, intervalMs: 60_000 });
    const topology = (hostname: string): Topology =>
      topologyOf([], [], [swarmNode({ id: 'node-1', hostname, memoryBytes: 8 * 2 ** 30 })]);
    const sampler = new HostSampler({ procRoot: '/proc', diskPaths: ['/'] }, { onProblem: () => undefined });
    const minute = new MinuteUsage();
    // Before the router listed the node: nothing to update, nothing created.
    minute.add(await sampler.sample());
    expect(await writeNodeUsage(pool, minute.take('node-1', { containers: 0, deployments: 0 })!)).toBe(false);
    for (let i = 0; i < 40; i++) {
      writer.update(topology(`host-${i}`));
      minute.add(await sampler.sample());
      await Promise.all([
        writer.write(),
        writeNodeUsage(pool, minute.take('node-1', { containers: i, deployments: 1 })!),
      ]);
    }
    sampler.close();
    const { rows } = await pool.query<Record<string, unknown>>(`SELECT * FROM node_metadata WHERE id = 'node-1'`);
    expect(rows[0]).toMatchObject({
      hostname: 'host-39',
      role: 'manager',
      running_containers: 39,
      running_deployments: 1,
    });
    expect(Number(rows[0]!.memory_used_bytes)).toBeGreaterThan(0);
    expect(Number(rows[0]!.disk_total_bytes)).toBeGreaterThan(0);
    expect(rows[0]!.usage_updated_at).toBeInstanceOf(Date);
    // The router's next write keeps the usage; the usage's next write keeps the router's columns.
    writer.update(topology('host-final'));
    await writer.write();
    const after = (await pool.query<Record<string, unknown>>(`SELECT * FROM node_metadata WHERE id = 'node-1'`))
      .rows[0]!;
    expect(after).toMatchObject({ hostname: 'host-final', running_containers: 39 });
  });

  it("writes its containers' usage and health into deployment_locations while the router rewrites the same rows", async () => {
    const writer = new LocationsWriter({ pool, isDatabaseReady: () => true, log, intervalMs: 60_000 });
    const containerIds = ['a'.repeat(64), 'b'.repeat(64)];
    const topology = (round: number): Topology =>
      ({
        services: new Map([
          [
            'svc-1',
            {
              id: 'svc-1',
              name: 'web',
              deploymentId: 'dep-usage',
              serviceName: 'default',
              mode: 'replicated',
              replicas: 2,
              ports: [{ target: 8080, published: 0 }],
              hostNetwork: false,
              labels: {},
            },
          ],
        ]),
        tasks: new Map([
          [
            'svc-1',
            containerIds.map((containerId, i) => ({
              id: `task-${i}-${round % 3}`,
              serviceId: 'svc-1',
              nodeId: 'node-1',
              state: 'running',
              desiredState: 'running',
              containerId,
              addresses: [],
            })),
          ],
        ]),
        nodes: new Map(),
      }) as unknown as Topology;
    const usage = new LocationUsage();
    const sample = (containerId: string, cpu: number) =>
      ({ containerId, cpuPercent: cpu, memoryBytes: 1_000_000 + cpu }) as unknown as Sample;
    // A container the router has not listed (not a swarm task): passed by.
    usage.add([sample('c'.repeat(64), 1)]);
    expect(
      await writeLocationUsage(
        pool,
        usage.take(() => 'none')!,
      ),
    ).toBe(0);
    for (let round = 0; round < 40; round++) {
      writer.update(topology(round));
      usage.add([sample(containerIds[0]!, round), sample(containerIds[0]!, round + 2), sample(containerIds[1]!, 50)]);
      const health = (id: string): ContainerHealth => (id === containerIds[0] ? 'healthy' : 'unhealthy');
      await Promise.all([writer.write(), writeLocationUsage(pool, usage.take(health)!)]);
    }
    writer.update(topology(41));
    await writer.write();
    const { rows } = await pool.query<Record<string, unknown>>(
      `SELECT container_id, task_id, status, cpu_usage, memory_usage, health_status, last_health_check
         FROM deployment_locations WHERE deployment_id = 'dep-usage' ORDER BY container_id`,
    );
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ task_id: 'task-0-2', status: 'running', cpu_usage: 40, health_status: 'healthy' });
    expect(Number(rows[0]!.memory_usage)).toBe(1_000_041);
    expect(rows[1]).toMatchObject({ task_id: 'task-1-2', cpu_usage: 50, health_status: 'unhealthy' });
    expect(rows[1]!.last_health_check).toBeInstanceOf(Date);
  });
});

const skipSwarm = missingTools(['root', 'dockerd', 'docker', 'busybox', 'postgres']);

describe.skipIf(skipSwarm)('node health through buildApp on a real swarm', () => {
  const SECRET = 'nodes-integration-secret-0123456789abcdef';
  let postgres: TestPostgres;
  let swarm: TestSwarm;
  let app: Awaited<ReturnType<typeof buildApp>>;
  let base: string;
  beforeAll(async () => {
    [postgres, swarm] = await Promise.all([startPostgres(), startSwarm()]);
    await swarm.cli(['network', 'create', '-d', 'overlay', '--attachable', 'nodes-net']);
    app = await buildApp(
      loadConfig({
        LOG_LEVEL: 'silent',
        DATABASE_URL: postgres.url,
        DOCKER_HOST: swarm.dockerHost,
        EDGE_ROLES: 'router,metrics',
        STATS_SOURCE: 'cgroup',
        METRICS_INTERVAL_SECONDS: '2',
        TRAEFIK_DYNAMIC_DIR: mkdtempSync(path.join(os.tmpdir(), 'swarm-edge-nodes-')),
        TRAEFIK_NETWORK: 'nodes-net',
        DISCOVERY_RESYNC_SECONDS: '5',
        FEED_JWT_SECRET: SECRET,
      }),
      { logger: false },
    );
    base = (await listenOnLoopback(app)).address;
  }, 180_000);
  afterAll(async () => {
    await app?.close();
    await Promise.all([postgres?.destroy(), swarm?.destroy()]);
  });

  it("puts a busy container's usage and health into deployment_locations within a minute, and the node's minutes into its history and feed", async () => {
    const service = (name: string, deploymentId: string, command: string) =>
      swarm.docker.createService({
        Name: name,
        Labels: { 'cloud.obiente.deployment_id': deploymentId },
        TaskTemplate: {
          ContainerSpec: {
            Image: swarm.image,
            Command: ['sh', '-c', command],
            HealthCheck: { Test: ['CMD-SHELL', 'exit 0'], Interval: 1e9, Timeout: 1e9, Retries: 1, StartPeriod: 0 },
          },
          Networks: [{ Target: 'nodes-net' }],
        },
        Mode: { Replicated: { Replicas: 1 } },
      });
    await service('busy', 'dep-busy', 'while :; do :; done');
    await service('calm', 'dep-calm', 'sleep 100000');
    const started = Date.now();
    const usage = async () =>
      (
        await postgres.query<{ deployment_id: string; cpu_usage: number | null; health_status: string | null }>(
          `SELECT deployment_id, cpu_usage, health_status FROM deployment_locations
            WHERE deployment_id IN ('dep-busy', 'dep-calm') ORDER BY deployment_id`,
        )
      ).rows;
    // The router lists the tasks at once; the metrics role fills their usage at its next minute.
    await waitFor(
      'usage of both containers',
      async () => (await usage()).filter((r) => r.cpu_usage !== null && r.health_status === 'healthy').length === 2,
      90_000,
      1_000,
    );
    const elapsed = Date.now() - started;
    const [busy, calm] = await usage();
    expect(busy!.cpu_usage).toBeGreaterThan(30);
    expect(calm!.cpu_usage).toBeLessThan(5);
    expect(elapsed).toBeLessThan(75_000); // a minute, plus the tasks' start and the first write's jitter

    // The same minute's node figures: node_metadata, node_metrics, the history API, the feed.
    const nodeId = (
      await postgres.query<{ id: string; usage_updated_at: Date | null; running_containers: number | null }>(
        `SELECT id, usage_updated_at, running_containers FROM node_metadata`,
      )
    ).rows[0]!;
    expect(nodeId.usage_updated_at).toBeInstanceOf(Date);
    expect(nodeId.running_containers).toBeGreaterThanOrEqual(2);
    await waitFor(
      'a node minute',
      async () =>
        Number((await postgres.query<{ n: string }>(`SELECT count(*) AS n FROM node_metrics`)).rows[0]!.n) > 0,
      90_000,
      1_000,
    );
    const token = await new SignJWT({ nodes: [nodeId.id] })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(SECRET));
    const history = await fetch(`http://${base}/api/v1/nodes/${nodeId.id}/metrics?step=1m`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(history.status).toBe(200);
    const answer = (await history.json()) as { cpuAvg: (number | null)[]; memoryTotal: (number | null)[] };
    expect(answer.cpuAvg.some((v) => v !== null && v > 0)).toBe(true);
    expect(answer.memoryTotal.some((v) => v !== null && v > 0)).toBe(true);

    const socket = new WebSocket(`ws://${base}/ws/metrics?token=${token}`);
    const frames: Array<Record<string, unknown>> = [];
    socket.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString()) as Record<string, unknown>));
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send(JSON.stringify({ type: 'subscribe', nodeId: nodeId.id }));
    socket.send(JSON.stringify({ type: 'subscribe', deploymentId: 'dep-busy' }));
    await waitFor('a live host frame', () => frames.some((f) => f.type === 'host'), 10_000, 50);
    const snapshot = frames.find((f) => f.type === 'snapshot')!;
    expect((snapshot.host as unknown[]).length).toBeGreaterThan(5);
    expect(frames.find((f) => f.type === 'error')).toMatchObject({ code: 'forbidden', deploymentId: 'dep-busy' });
    socket.close();
  });
});
