/**
 * The usage and health columns of `deployment_locations` for this node's containers, every
 * minute, in one batched UPDATE: `cpu_usage` (the minute's mean, percent of one CPU),
 * `memory_usage` (bytes, as last sampled), `health_status` (Docker's health check state:
 * healthy, unhealthy, starting, none) and `last_health_check`.
 *
 * Who owns which columns: the router's location writer (discovery/locations-writer.ts) inserts
 * and deletes the rows and owns identity and placement (deployment, node, service, task, status,
 * port, updated_at); the metrics role of the container's node owns these four, with an UPDATE
 * naming nothing else. Neither statement names the other's columns, so they cannot undo each
 * other. A container the router has not listed yet (or never will: not a swarm task) has no row,
 * and the update passes it by.
 */
import type pg from 'pg';
import type { ContainerHealth, Sample } from '../metrics/index.js';

export const UPDATE_LOCATION_USAGE = `UPDATE deployment_locations AS d SET
  cpu_usage = u.cpu, memory_usage = u.memory, health_status = u.health, last_health_check = now()
FROM unnest($1::text[], $2::float8[], $3::bigint[], $4::text[]) AS u(container_id, cpu, memory, health)
WHERE d.container_id = u.container_id`;

interface Accumulator {
  cpuSum: number;
  cpuCount: number;
  memory: number | null;
}

export class LocationUsage {
  private minute = new Map<string, Accumulator>();

  add(samples: readonly Sample[]): void {
    for (const sample of samples) {
      let acc = this.minute.get(sample.containerId);
      if (!acc) this.minute.set(sample.containerId, (acc = { cpuSum: 0, cpuCount: 0, memory: null }));
      if (sample.cpuPercent !== null) {
        acc.cpuSum += sample.cpuPercent;
        acc.cpuCount += 1;
      }
      if (sample.memoryBytes !== null) acc.memory = sample.memoryBytes;
    }
  }

  /** The minute's rows as UPDATE_LOCATION_USAGE's parameters, and a fresh minute; undefined when empty. */
  take(health: (containerId: string) => ContainerHealth | undefined): unknown[][] | undefined {
    if (this.minute.size === 0) return undefined;
    const columns: [string[], (number | null)[], (number | null)[], string[]] = [[], [], [], []];
    // In container id order: two minutes' statements (or the router's) lock rows in one order.
    for (const [containerId, acc] of [...this.minute].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      columns[0].push(containerId);
      columns[1].push(acc.cpuCount > 0 ? Math.round((acc.cpuSum / acc.cpuCount) * 100) / 100 : null);
      columns[2].push(acc.memory);
      columns[3].push(health(containerId) ?? 'none');
    }
    this.minute = new Map();
    return columns;
  }
}

export async function writeLocationUsage(pool: Pick<pg.Pool, 'query'>, columns: unknown[][]): Promise<number> {
  const result = await pool.query(UPDATE_LOCATION_USAGE, columns);
  return result.rowCount ?? 0;
}
