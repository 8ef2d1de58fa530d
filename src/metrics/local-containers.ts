/**
 * The deployment containers running on this node: one `GET /containers/json` per tick, plus one
 * inspect per new container when the source needs its PID and cgroup (the cgroup source).
 *
 * A container belongs to a deployment through its `<prefix>.deployment_id` container label, or,
 * for swarm tasks whose service carries the label (services' labels are not copied to their
 * containers, and a worker cannot read services), through deployment_locations, which the router
 * keeps. Labels are untrusted: an invalid deployment id is skipped, logged once and counted.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import type { Logger } from '../lib/logger.js';
import { withTimeout } from '../discovery/docker-client.js';
import { isIdentifier } from '../lib/identifiers.js';
import type { ContainerRef } from './sample.js';
import { healthOfStatus, type ContainerHealth, type LocalContainer } from './sources/stats-source.js';

/** Looks up deployments of swarm containers by container id (deployment_locations). */
export type DeploymentResolver = (containerIds: readonly string[]) => Promise<ReadonlyMap<string, string>>;

interface Inspected {
  readonly pid: number;
  readonly cgroupParent: string;
  readonly hostNetwork: boolean;
  readonly at: number;
  /** The PID is not under PROC_ROOT even right after inspecting: PROC_ROOT is not the host's /proc. */
  readonly pidInvisible: boolean;
}

/** A container whose PID is not visible under PROC_ROOT at all is re-inspected at most this often. */
const REINSPECT_MS = 60_000;

const RESOLVE_TTL_MS = 30_000;

export class LocalContainers {
  /** The last two listings' containers: an exit is reported a moment after the container left the list. */
  private listed = new Map<string, LocalContainer>();
  private previouslyListed = new Map<string, LocalContainer>();
  private nodeId: string | undefined;
  private readonly inspected = new Map<string, Inspected>();
  private readonly resolved = new Map<string, { deploymentId: string | undefined; at: number }>();
  private readonly invalidLogged = new Set<string>();
  private invalidLabels = 0;
  private warnedInvisible = false;

  constructor(
    private readonly options: { labelPrefix: string; procRoot: string; needsInspect: boolean; timeoutMs: number },
    private readonly deps: { docker: Docker; resolveDeployments: DeploymentResolver | undefined; log: Logger },
  ) {}

  stats() {
    return { invalidLabels: this.invalidLabels, inspected: this.inspected.size };
  }

  /** A container as one of the last two listings saw it. */
  refOf(containerId: string): ContainerRef | undefined {
    return (this.listed.get(containerId) ?? this.previouslyListed.get(containerId))?.ref;
  }

  /** Docker's health state of a container at the last listing (undefined: not listed). */
  healthOf(containerId: string): ContainerHealth | undefined {
    const container = this.listed.get(containerId);
    return container && (container.health ?? 'none');
  }

  /** This node's id (the swarm node id, else the engine's name), once the first listing asked Docker. */
  get node(): string | undefined {
    return this.nodeId;
  }

  async list(): Promise<LocalContainer[]> {
    const { docker } = this.deps;
    if (this.nodeId === undefined) {
      const info = (await withTimeout(docker.info(), this.options.timeoutMs, 'docker info')) as {
        Swarm?: { NodeID?: string };
        Name?: string;
      };
      this.nodeId = info.Swarm?.NodeID || info.Name || 'local';
    }
    const listed = await withTimeout(
      docker.listContainers({ filters: { status: ['running'] } }),
      this.options.timeoutMs,
      'list containers',
    );
    const labelKey = `${this.options.labelPrefix}.deployment_id`;
    const now = Date.now();
    const unresolved = listed
      .filter((c) => c.Labels[labelKey] === undefined && c.Labels['com.docker.swarm.task.id'] !== undefined)
      .map((c) => c.Id)
      .filter((id) => (this.resolved.get(id)?.at ?? -Infinity) < now - RESOLVE_TTL_MS);
    if (unresolved.length > 0 && this.deps.resolveDeployments) {
      try {
        const found = await this.deps.resolveDeployments(unresolved);
        for (const id of unresolved) this.resolved.set(id, { deploymentId: found.get(id), at: now });
      } catch (error) {
        this.deps.log.debug({ err: error }, 'could not look up deployments of swarm containers; retrying next tick');
      }
    }

    const live = new Set<string>();
    const containers: LocalContainer[] = [];
    for (const c of listed) {
      live.add(c.Id);
      const labelled = c.Labels[labelKey];
      const deploymentId = labelled ?? this.resolved.get(c.Id)?.deploymentId;
      if (deploymentId === undefined) continue;
      if (!isIdentifier(deploymentId)) {
        this.invalidLabels += 1;
        if (!this.invalidLogged.has(c.Id)) {
          this.invalidLogged.add(c.Id);
          this.deps.log.warn(
            { containerId: c.Id.slice(0, 12), label: labelKey, value: String(deploymentId).slice(0, 200) },
            'container has an invalid deployment id; not collected',
          );
        }
        continue;
      }
      const details = this.options.needsInspect ? await this.inspect(c.Id) : undefined;
      if (this.options.needsInspect && details === undefined) continue;
      containers.push({
        ref: {
          containerId: c.Id,
          deploymentId,
          nodeId: c.Labels['com.docker.swarm.node.id'] ?? this.nodeId,
          serviceId: c.Labels['com.docker.swarm.service.id'],
          taskId: c.Labels['com.docker.swarm.task.id'],
          name: (c.Names[0] ?? c.Id).replace(/^\//, ''),
        },
        pid: details?.pid ?? 0,
        cgroupParent: details?.cgroupParent ?? '',
        hostNetwork: details?.hostNetwork ?? c.HostConfig.NetworkMode === 'host',
        health: healthOfStatus(c.Status),
      });
    }
    this.previouslyListed = this.listed;
    this.listed = new Map(containers.map((c) => [c.ref.containerId, c]));
    for (const id of this.inspected.keys()) if (!live.has(id)) this.inspected.delete(id);
    for (const id of this.resolved.keys()) if (!live.has(id)) this.resolved.delete(id);
    for (const id of this.invalidLogged) if (!live.has(id)) this.invalidLogged.delete(id);
    return containers;
  }

  /** PID and cgroup of a container, re-read when its PID is gone (a restart keeps the id). */
  private async inspect(id: string): Promise<Inspected | undefined> {
    const known = this.inspected.get(id);
    const visible = (pid: number) => existsSync(path.join(this.options.procRoot, String(pid)));
    // A PID that went away means a restart (same id, new process): inspect again at once.
    if (known && (visible(known.pid) || (known.pidInvisible && Date.now() - known.at < REINSPECT_MS))) return known;
    try {
      const info = await withTimeout(
        this.deps.docker.getContainer(id).inspect(),
        this.options.timeoutMs,
        'inspect container',
      );
      const pid = info.State.Pid;
      if (pid <= 0) return undefined;
      const result = {
        pid,
        cgroupParent: info.HostConfig.CgroupParent ?? '',
        hostNetwork: info.HostConfig.NetworkMode === 'host',
        at: Date.now(),
        pidInvisible: !visible(pid),
      };
      if (result.pidInvisible && !this.warnedInvisible) {
        this.warnedInvisible = true;
        this.deps.log.warn(
          { procRoot: this.options.procRoot, pid },
          'container PIDs are not visible under PROC_ROOT: mount the host /proc there (network counters are unavailable until then)',
        );
      }
      this.inspected.set(id, result);
      return result;
    } catch (error) {
      this.deps.log.debug({ err: error, containerId: id.slice(0, 12) }, 'could not inspect container');
      return undefined;
    }
  }
}
