/**
 * This node's usage in `node_metadata`, every minute: one UPDATE of the usage columns only
 * (migration 2). The router's upsert of the same rows (discovery/locations-writer.ts) names its
 * own columns only (identity, role, capacity, deployment count), so neither undoes the other's
 * writes; a node the router has not listed yet has no row, and the update waits for it.
 *
 * The minute's figures: CPU and rates averaged over the minute's samples, the rest as last read.
 */
import type pg from 'pg';
import type { HostSample } from './host-sampler.js';

export const UPDATE_NODE_USAGE = `UPDATE node_metadata SET
  cpu_usage_percent = $2, load1 = $3, load5 = $4, load15 = $5,
  memory_used_bytes = $6, memory_available_bytes = $7, swap_used_bytes = $8,
  disk_used_bytes = $9, disk_total_bytes = $10,
  disk_read_bytes_per_sec = $11, disk_write_bytes_per_sec = $12, net_rx_bytes_per_sec = $13, net_tx_bytes_per_sec = $14,
  running_containers = $15, running_deployments = $16, usage_updated_at = now()
WHERE id = $1`;

export interface Running {
  readonly containers: number;
  readonly deployments: number;
}

/** Means over the samples of a minute (nulls left out), and the last sample. */
export class MinuteUsage {
  private samples: HostSample[] = [];

  add(sample: HostSample): void {
    this.samples.push(sample);
    if (this.samples.length > 1_000) this.samples.shift();
  }

  /** The minute's figures as UPDATE_NODE_USAGE's values, and a fresh minute; undefined without samples. */
  take(nodeId: string, running: Running | undefined): unknown[] | undefined {
    const samples = this.samples;
    if (samples.length === 0) return undefined;
    this.samples = [];
    const last = samples[samples.length - 1]!;
    const mean = (key: keyof HostSample) => {
      const values = samples.map((s) => s[key]).filter((v): v is number => typeof v === 'number');
      return values.length === 0 ? null : values.reduce((a, b) => a + b, 0) / values.length;
    };
    const disk = last.disks[0];
    return [
      nodeId,
      mean('cpuPercent'),
      last.load1,
      last.load5,
      last.load15,
      last.memoryUsedBytes,
      last.memoryAvailableBytes,
      last.swapUsedBytes,
      disk?.usedBytes ?? null,
      disk?.totalBytes ?? null,
      mean('diskReadRate'),
      mean('diskWriteRate'),
      mean('netRxRate'),
      mean('netTxRate'),
      running?.containers ?? null,
      running?.deployments ?? null,
    ];
  }
}

export async function writeNodeUsage(pool: Pick<pg.Pool, 'query'>, values: unknown[]): Promise<boolean> {
  const result = await pool.query(UPDATE_NODE_USAGE, values);
  return (result.rowCount ?? 0) > 0;
}
