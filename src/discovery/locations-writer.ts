/**
 * Keeps deployment_locations and node_metadata true to the cluster (the platform's periodic
 * reconciliation, done on every change instead of once a minute): running tasks are upserted,
 * vanished ones deleted, nodes upserted and removed ones deleted, each table in one batched
 * statement inside one transaction. Writes are debounced: a burst of task changes is one write.
 */
import type { Logger } from '../lib/logger.js';
import type pg from 'pg';
import { PeriodicJob } from '../lib/periodic-job.js';
import type { Topology } from './topology.js';

const UPSERT_LOCATIONS = `
INSERT INTO deployment_locations (deployment_id, node_id, node_hostname, node_ip, container_id, service_id, task_id, status, port, updated_at)
SELECT * , now() FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int[])
ON CONFLICT (container_id) DO UPDATE SET
  deployment_id = EXCLUDED.deployment_id, node_id = EXCLUDED.node_id, node_hostname = EXCLUDED.node_hostname,
  node_ip = EXCLUDED.node_ip, service_id = EXCLUDED.service_id, task_id = EXCLUDED.task_id, status = EXCLUDED.status,
  port = COALESCE(EXCLUDED.port, deployment_locations.port), updated_at = now()
WHERE (deployment_locations.deployment_id, deployment_locations.node_id, deployment_locations.status, deployment_locations.task_id)
  IS DISTINCT FROM (EXCLUDED.deployment_id, EXCLUDED.node_id, EXCLUDED.status, EXCLUDED.task_id)`;

const DELETE_VANISHED = `DELETE FROM deployment_locations WHERE NOT (container_id = ANY($1::text[]))`;

const UPSERT_NODES = `
INSERT INTO node_metadata (id, hostname, ip, role, availability, status, leader, engine_version, total_cpu, total_memory, deployment_count, labels, last_heartbeat, updated_at)
SELECT id, hostname, ip, role, availability, status, leader, engine_version, total_cpu, total_memory, deployment_count, labels::jsonb, now(), now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bool[], $8::text[], $9::float8[], $10::int8[], $11::int[], $12::text[])
  AS n(id, hostname, ip, role, availability, status, leader, engine_version, total_cpu, total_memory, deployment_count, labels)
ON CONFLICT (id) DO UPDATE SET
  hostname = EXCLUDED.hostname, ip = EXCLUDED.ip, role = EXCLUDED.role, availability = EXCLUDED.availability,
  status = EXCLUDED.status, leader = EXCLUDED.leader, engine_version = EXCLUDED.engine_version, total_cpu = EXCLUDED.total_cpu,
  total_memory = EXCLUDED.total_memory, deployment_count = EXCLUDED.deployment_count, labels = EXCLUDED.labels,
  last_heartbeat = now(), updated_at = now()`;

const DELETE_NODES = `DELETE FROM node_metadata WHERE NOT (id = ANY($1::text[]))`;

const DEPLOYMENTS_OF_CONTAINERS =
  'SELECT container_id, deployment_id FROM deployment_locations WHERE container_id = ANY($1)';

/**
 * The deployments of containers, by container id, as this writer recorded them: how a collector
 * on a worker (which cannot read services) finds the deployment of a swarm task's container.
 */
export async function deploymentsOfContainers(
  pool: Pick<pg.Pool, 'query'>,
  containerIds: readonly string[],
): Promise<Map<string, string>> {
  const { rows } = await pool.query<{ container_id: string; deployment_id: string }>(DEPLOYMENTS_OF_CONTAINERS, [
    containerIds,
  ]);
  return new Map(rows.map((r) => [r.container_id, r.deployment_id]));
}

export class LocationsWriter {
  private latest: Topology | undefined;
  private readonly job: PeriodicJob;
  private writes = 0;

  constructor(
    private readonly deps: {
      pool: Pick<pg.Pool, 'connect'>;
      isDatabaseReady: () => boolean;
      log: Logger;
      /** The resync interval: the tables are rewritten at least this often (heartbeat). */
      intervalMs: number;
    },
  ) {
    this.job = new PeriodicJob({
      name: 'locations-writer',
      intervalMs: deps.intervalMs,
      backoff: { baseMs: 500, maxMs: 15_000 },
      log: deps.log,
      run: () => this.write(),
    });
  }

  start(): void {
    this.job.start();
  }

  stop(): Promise<void> {
    return this.job.stop();
  }

  stats() {
    return { writes: this.writes, ...this.job.getStats() };
  }

  update(topology: Topology): void {
    this.latest = topology;
    this.job.trigger();
  }

  async write(): Promise<void> {
    const topology = this.latest;
    if (!topology) return;
    if (!this.deps.isDatabaseReady()) throw new Error('database not ready');
    const loc = {
      deployment: [] as string[],
      node: [] as string[],
      hostname: [] as (string | null)[],
      ip: [] as (string | null)[],
      container: [] as string[],
      service: [] as string[],
      task: [] as string[],
      status: [] as string[],
      port: [] as (number | null)[],
    };
    const perNode = new Map<string, number>();
    for (const service of topology.services.values()) {
      for (const task of topology.tasks.get(service.id) ?? []) {
        if (task.state !== 'running' || !task.containerId) continue;
        const node = topology.nodes.get(task.nodeId);
        loc.deployment.push(service.deploymentId);
        loc.node.push(task.nodeId);
        loc.hostname.push(node?.hostname ?? null);
        loc.ip.push(node?.address ?? null);
        loc.container.push(task.containerId);
        loc.service.push(service.id);
        loc.task.push(task.id);
        loc.status.push('running');
        loc.port.push(service.ports[0]?.target ?? null);
        perNode.set(task.nodeId, (perNode.get(task.nodeId) ?? 0) + 1);
      }
    }
    const nodes = [...topology.nodes.values()];
    const client = await this.deps.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(UPSERT_LOCATIONS, [
        loc.deployment,
        loc.node,
        loc.hostname,
        loc.ip,
        loc.container,
        loc.service,
        loc.task,
        loc.status,
        loc.port,
      ]);
      await client.query(DELETE_VANISHED, [loc.container]);
      await client.query(UPSERT_NODES, [
        nodes.map((n) => n.id),
        nodes.map((n) => n.hostname),
        nodes.map((n) => n.address || null),
        nodes.map((n) => n.role),
        nodes.map((n) => n.availability),
        nodes.map((n) => n.state),
        nodes.map((n) => n.leader),
        nodes.map((n) => n.engineVersion ?? null),
        nodes.map((n) => n.cpus ?? null),
        nodes.map((n) => n.memoryBytes ?? null),
        nodes.map((n) => perNode.get(n.id) ?? 0),
        nodes.map((n) => JSON.stringify(n.labels)),
      ]);
      // Never empty the node table on a topology that lists no node at all (a failed read).
      if (nodes.length > 0) await client.query(DELETE_NODES, [nodes.map((n) => n.id)]);
      await client.query('COMMIT');
      this.writes += 1;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      // Out of the pool: the connection may be broken, or on a primary demoted by a failover.
      client.release(error as Error);
      throw error;
    }
    client.release();
  }
}
