/**
 * The users' side of the platform: labelled swarm services and their routing rows, then churn —
 * services created, scaled, updated and removed; rows inserted, updated and deleted — at a steady
 * pace, whatever faults are going on (an action that fails during a fault is counted, not fatal).
 */
import type Docker from 'dockerode';
import type pg from 'pg';
import { NETWORK } from './cluster.js';
import { GOOD_PREFIX, LABEL } from './truth.js';

export interface ChurnStats {
  actions: Record<string, number>;
  failed: number;
}

export class Workload {
  /** deployment id → service name, for deployments that currently have a service. */
  private readonly services = new Map<string, string>();
  /** Good rows the soak has inserted and not deleted (id → deployment). */
  private readonly rows = new Map<string, string>();
  private nextRow = 0;
  private generation = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  readonly stats: ChurnStats = { actions: {}, failed: 0 };
  /** The deployments whose service is never removed: the feed's readers and the gap checks watch them. */
  readonly steady: readonly string[];

  constructor(
    private readonly docker: Docker,
    private readonly db: pg.Pool,
    private readonly image: string,
    readonly deployments: readonly string[],
    private readonly random: () => number,
  ) {
    this.steady = deployments.slice(0, Math.max(2, Math.floor(deployments.length / 3)));
  }

  async seed(): Promise<void> {
    for (const deploymentId of this.deployments) {
      await this.createService(deploymentId, 1);
      await this.insertRow(deploymentId);
    }
  }

  start(everyMs: number): void {
    const tick = () => {
      this.running = this.step()
        .catch(() => {
          this.stats.failed += 1;
        })
        .finally(() => {
          if (this.timer !== undefined) this.timer = setTimeout(tick, everyMs);
        });
    };
    this.timer = setTimeout(tick, everyMs);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One churn action, chosen at random; steady deployments keep a service with 1-2 replicas. */
  private async step(): Promise<void> {
    const roll = this.random();
    const deploymentId = this.pick(this.deployments);
    const hasService = this.services.has(deploymentId);
    const steady = this.steady.includes(deploymentId);
    let action: string;
    if (roll < 0.3) {
      action = 'scale';
      if (!hasService) return this.createService(deploymentId, 1).then(() => this.count('create'));
      await this.scale(deploymentId, steady ? 1 + Math.floor(this.random() * 2) : Math.floor(this.random() * 3));
    } else if (roll < 0.45) {
      action = 'row-insert';
      if (this.rows.size >= this.deployments.length * 2) return this.step();
      await this.insertRow(deploymentId);
    } else if (roll < 0.6) {
      action = 'row-update';
      const id = this.pick([...this.rows.keys()]);
      const n = this.nextRow++;
      // A new unique domain (sometimes an IDN), sometimes a path prefix, sometimes TLS.
      await this.db.query(
        `UPDATE deployment_routing SET domain = $2, path_prefix = $3, ssl_enabled = $4, updated_at = now() WHERE id = $1`,
        [id, this.domain(n), this.random() < 0.3 ? `/p${n}` : '', this.random() < 0.3],
      );
    } else if (roll < 0.7) {
      action = 'row-delete';
      if (this.rows.size <= this.deployments.length / 2) return this.step();
      const id = this.pick([...this.rows.keys()]);
      await this.db.query(`DELETE FROM deployment_routing WHERE id = $1`, [id]);
      this.rows.delete(id);
    } else if (roll < 0.85) {
      action = 'update';
      if (!hasService) return this.createService(deploymentId, 1).then(() => this.count('create'));
      await this.update(deploymentId);
    } else {
      if (hasService && !steady) {
        action = 'remove';
        await this.docker.getService(this.services.get(deploymentId)!).remove();
        this.services.delete(deploymentId);
      } else if (!hasService) {
        action = 'create';
        await this.createService(deploymentId, 1);
      } else {
        action = 'scale';
        await this.scale(deploymentId, 1 + Math.floor(this.random() * 2));
      }
    }
    this.count(action);
  }

  private count(action: string): void {
    this.stats.actions[action] = (this.stats.actions[action] ?? 0) + 1;
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)]!;
  }

  private domain(n: number): string {
    return n % 7 === 3 ? `bücher-${n}.soak.test` : `r${n}.soak.test`;
  }

  private async insertRow(deploymentId: string): Promise<void> {
    const n = this.nextRow++;
    const id = `${GOOD_PREFIX}${n}`;
    await this.db.query(
      `INSERT INTO deployment_routing (id, deployment_id, domain, path_prefix, target_port, ssl_enabled) VALUES ($1, $2, $3, $4, 8080, $5)`,
      [id, deploymentId, this.domain(n), this.random() < 0.3 ? `/p${n}` : '', this.random() < 0.3],
    );
    this.rows.set(id, deploymentId);
  }

  private async createService(deploymentId: string, replicas: number): Promise<void> {
    const name = `soak-${deploymentId}-${this.generation++}`;
    await this.docker.createService({
      Name: name,
      Labels: { [LABEL]: deploymentId },
      TaskTemplate: {
        ContainerSpec: { Image: this.image, Labels: { [LABEL]: deploymentId } },
        Networks: [{ Target: NETWORK }],
        RestartPolicy: { Condition: 'any', Delay: 1_000_000_000 },
      },
      Mode: { Replicated: { Replicas: replicas } },
      UpdateConfig: { Parallelism: 1, Order: 'start-first' },
    });
    this.services.set(deploymentId, name);
  }

  private async scale(deploymentId: string, replicas: number): Promise<void> {
    await this.modify(deploymentId, (spec) => ({ ...spec, Mode: { Replicated: { Replicas: replicas } } }));
  }

  private async update(deploymentId: string): Promise<void> {
    const generation = this.generation++;
    await this.modify(deploymentId, (spec) => {
      const template = spec.TaskTemplate as { ContainerSpec: Record<string, unknown> };
      return {
        ...spec,
        TaskTemplate: {
          ...template,
          ContainerSpec: { ...template.ContainerSpec, Env: [`SOAK_GENERATION=${generation}`] },
        },
      };
    });
  }

  private async modify(
    deploymentId: string,
    change: (spec: Record<string, unknown>) => Record<string, unknown>,
  ): Promise<void> {
    const service = this.docker.getService(this.services.get(deploymentId)!);
    const current = (await service.inspect()) as { Version: { Index: number }; Spec: Record<string, unknown> };
    await service.update({ version: current.Version.Index, ...change(current.Spec) });
  }
}
