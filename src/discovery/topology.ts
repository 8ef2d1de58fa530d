/**
 * What runs where, as plain data: the deployment services, their live tasks, and the nodes. Built
 * from Docker API objects by the functions below, which treat every field (labels included) as
 * untrusted input.
 */
import { isIP } from 'node:net';
import { constants } from 'node:os';

export interface SwarmNode {
  readonly id: string;
  readonly hostname: string;
  readonly address: string;
  readonly role: string;
  readonly availability: string;
  readonly state: string;
  readonly leader: boolean;
  readonly engineVersion: string | undefined;
  readonly cpus: number | undefined;
  readonly memoryBytes: number | undefined;
  readonly labels: Readonly<Record<string, string>>;
}

export interface PublishedPort {
  readonly target: number;
  readonly published: number;
  readonly mode: 'ingress' | 'host';
}

export interface SwarmService {
  readonly id: string;
  readonly name: string;
  readonly deploymentId: string;
  /** Which of the deployment's services this is (label `<prefix>.service_name`, default "default"). */
  readonly serviceName: string;
  readonly mode: 'replicated' | 'global';
  readonly replicas: number | undefined;
  readonly ports: readonly PublishedPort[];
  /** The spec asks for no network at all: tasks run on the host network. */
  readonly hostNetwork: boolean;
  readonly labels: Readonly<Record<string, string>>;
  /**
   * A rolling update (or its rollback) is in progress: Swarm replaces tasks one batch after
   * another, and announces no event for each, so the service is not converged until it ends.
   */
  readonly updating?: boolean;
}

export interface TaskAddress {
  readonly networkId: string;
  readonly networkName: string;
  readonly ip: string;
}

export interface SwarmTask {
  readonly id: string;
  readonly serviceId: string;
  readonly nodeId: string;
  readonly state: string;
  readonly desiredState: string;
  readonly containerId: string | undefined;
  readonly addresses: readonly TaskAddress[];
  /**
   * What decides whether the task's container has a healthcheck: the image its spec names and the
   * spec's own healthcheck (which overrides the image's). Tasks with the same source have the same
   * healthcheck, so one inspect tells for all of them (healthcheck-memory.ts).
   */
  readonly healthcheckSource?: string;
}

export interface Topology {
  readonly services: ReadonlyMap<string, SwarmService>;
  /** Tasks by service id, only those whose desired state is running. */
  readonly tasks: ReadonlyMap<string, readonly SwarmTask[]>;
  readonly nodes: ReadonlyMap<string, SwarmNode>;
}

type Json = Record<string, unknown>;

const obj = (value: unknown): Json => (value !== null && typeof value === 'object' ? (value as Json) : {});
const str = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
const num = (value: unknown): number | undefined =>
  typeof value === 'number' && Number.isFinite(value) ? value : undefined;

function labelsOf(value: unknown): Record<string, string> {
  // No prototype: a label named __proto__ or constructor is a label like any other.
  const labels = Object.create(null) as Record<string, string>;
  for (const [key, v] of Object.entries(obj(value))) if (typeof v === 'string') labels[key] = v;
  return labels;
}

export function parseNode(raw: unknown): SwarmNode | undefined {
  const node = obj(raw);
  const id = str(node.ID);
  if (!id) return undefined;
  const spec = obj(node.Spec);
  const description = obj(node.Description);
  const resources = obj(description.Resources);
  const status = obj(node.Status);
  const manager = obj(node.ManagerStatus);
  const nanoCpus = num(resources.NanoCPUs);
  // A manager's Status.Addr can be 0.0.0.0 on some setups; its manager address is then the truth.
  let address = str(status.Addr) ?? '';
  if ((address === '' || address === '0.0.0.0') && str(manager.Addr))
    address = (str(manager.Addr) ?? '').replace(/:\d+$/, '');
  // It ends up in server URLs: anything but an IP address counts as no address.
  if (isIP(address) === 0) address = '';
  return {
    id,
    hostname: str(description.Hostname) ?? id,
    address,
    role: str(spec.Role) ?? 'worker',
    availability: str(spec.Availability) ?? 'active',
    state: str(status.State) ?? 'unknown',
    leader: manager.Leader === true,
    engineVersion: str(obj(description.Engine).EngineVersion),
    cpus: nanoCpus === undefined ? undefined : nanoCpus / 1e9,
    memoryBytes: num(resources.MemoryBytes),
    labels: labelsOf(spec.Labels),
  };
}

/** Only services carrying `<prefix>.deployment_id` are deployments; others return undefined. */
export function parseService(raw: unknown, labelPrefix: string): SwarmService | undefined {
  const service = obj(raw);
  const id = str(service.ID);
  const spec = obj(service.Spec);
  const labels = labelsOf(spec.Labels);
  const deploymentId = labels[`${labelPrefix}.deployment_id`];
  if (!id || !deploymentId) return undefined;
  const mode = obj(spec.Mode);
  const replicated = mode.Replicated !== undefined;
  const ports: PublishedPort[] = [];
  for (const port of Array.isArray(obj(service.Endpoint).Ports) ? (obj(service.Endpoint).Ports as unknown[]) : []) {
    const p = obj(port);
    const target = num(p.TargetPort);
    const published = num(p.PublishedPort);
    if (target !== undefined && published !== undefined && (p.Protocol ?? 'tcp') === 'tcp') {
      ports.push({ target, published, mode: p.PublishMode === 'host' ? 'host' : 'ingress' });
    }
  }
  const taskTemplate = obj(spec.TaskTemplate);
  const networks: unknown[] = [
    ...(Array.isArray(taskTemplate.Networks) ? (taskTemplate.Networks as unknown[]) : []),
    ...(Array.isArray(spec.Networks) ? (spec.Networks as unknown[]) : []),
  ];
  return {
    id,
    name: str(spec.Name) ?? id,
    deploymentId,
    serviceName: labels[`${labelPrefix}.service_name`] ?? 'default',
    mode: replicated ? 'replicated' : 'global',
    replicas: replicated ? num(obj(mode.Replicated).Replicas) : undefined,
    ports,
    hostNetwork: networks.length === 0 || networks.some((n) => str(obj(n).Target) === 'host'),
    labels,
    updating: UPDATING.has(str(obj(service.UpdateStatus).State) ?? ''),
  };
}

/** UpdateStatus.State values while Swarm is still replacing tasks. */
const UPDATING = new Set(['updating', 'rollback_started']);

export function parseTask(raw: unknown): SwarmTask | undefined {
  const task = obj(raw);
  const id = str(task.ID);
  const serviceId = str(task.ServiceID);
  if (!id || !serviceId) return undefined;
  const status = obj(task.Status);
  const addresses: TaskAddress[] = [];
  for (const attachment of Array.isArray(task.NetworksAttachments) ? task.NetworksAttachments : []) {
    const network = obj(obj(attachment).Network);
    const networkName = str(obj(network.Spec).Name) ?? '';
    const networkId = str(network.ID) ?? '';
    const addressList: unknown[] = Array.isArray(obj(attachment).Addresses)
      ? (obj(attachment).Addresses as unknown[])
      : [];
    for (const cidr of addressList) {
      // Addresses come in CIDR form (10.0.1.3/24).
      const ip = str(cidr)?.split('/')[0];
      // It ends up in server URLs: only an IP address is taken.
      if (ip !== undefined && isIP(ip) !== 0) addresses.push({ networkId, networkName, ip });
    }
  }
  return {
    id,
    serviceId,
    nodeId: str(task.NodeID) ?? '',
    state: str(status.State) ?? 'unknown',
    desiredState: str(task.DesiredState) ?? 'unknown',
    containerId: str(obj(status.ContainerStatus).ContainerID) || undefined,
    addresses,
    healthcheckSource: healthcheckSourceOf(obj(obj(task.Spec).ContainerSpec)),
  };
}

/** Longer than any image reference Docker accepts (255 for the name, plus tag and digest). */
const MAX_HEALTHCHECK_SOURCE = 1_024;

function healthcheckSourceOf(containerSpec: Json): string | undefined {
  const image = str(containerSpec.Image);
  if (!image) return undefined;
  const source = `${image}\n${JSON.stringify(containerSpec.Healthcheck ?? null)}`;
  return source.length <= MAX_HEALTHCHECK_SOURCE ? source : undefined;
}

/**
 * The container events after which an inspect may show a task serving (parseServingContainer):
 * its start, and its first healthy check when it has a healthcheck.
 */
export function mayStartServing(action: unknown): boolean {
  return action === 'start' || action === 'health_status: healthy';
}

/**
 * A signal as Docker names it (`kill` event attribute, `Config.StopSignal`): a number, or a name
 * with or without `SIG`, any case (moby's signal.ParseSignal). Undefined for anything else.
 */
export function signalNumber(value: unknown): number | undefined {
  if (typeof value !== 'string' || value.length > 12) return undefined;
  if (/^[0-9]{1,2}$/.test(value)) {
    const n = Number(value);
    return n >= 1 && n <= 64 ? n : undefined;
  }
  const name = value.toUpperCase();
  const full = name.startsWith('SIG') ? name : `SIG${name}`;
  const known: Readonly<Record<string, number>> = constants.signals;
  return Object.hasOwn(known, full) ? known[full] : undefined;
}

/**
 * Whether a container's `kill` event stops it: SIGKILL, SIGTERM (Docker's default stop signal),
 * or the container's own stop signal when it has one (`stopSignal`, from its inspect). Other
 * signals (SIGHUP to reload, SIGUSR1...) leave it serving.
 */
export function killStops(signal: number, stopSignal?: number): boolean {
  return signal === constants.signals.SIGKILL || signal === constants.signals.SIGTERM || signal === stopSignal;
}

/**
 * A swarm task's container as the local daemon inspects it (`GET /containers/{id}/json`), as the
 * task it runs once it serves: running, and healthy when it has a healthcheck. Undefined for a
 * container that is not a swarm task's or does not serve yet.
 */
export function parseServingContainer(raw: unknown): SwarmTask | undefined {
  const container = obj(raw);
  const labels = obj(obj(container.Config).Labels);
  const id = str(labels['com.docker.swarm.task.id']);
  const serviceId = str(labels['com.docker.swarm.service.id']);
  const nodeId = str(labels['com.docker.swarm.node.id']);
  const state = obj(container.State);
  if (!id || !serviceId || !nodeId || state.Running !== true) return undefined;
  const health = str(obj(state.Health).Status);
  if (health !== undefined && health !== 'healthy') return undefined;
  const addresses: TaskAddress[] = [];
  for (const [networkName, value] of Object.entries(obj(obj(container.NetworkSettings).Networks))) {
    const network = obj(value);
    const networkId = str(network.NetworkID) ?? '';
    for (const ip of [str(network.IPAddress), str(network.GlobalIPv6Address)]) {
      if (ip !== undefined && isIP(ip) !== 0) addresses.push({ networkId, networkName, ip });
    }
  }
  return {
    id,
    serviceId,
    nodeId,
    state: 'running',
    desiredState: 'running',
    containerId: str(container.Id),
    addresses,
  };
}

/** The swarm task an inspected container runs, by its label. */
export function containerTaskId(raw: unknown): string | undefined {
  return str(obj(obj(obj(raw).Config).Labels)['com.docker.swarm.task.id']);
}

/**
 * Whether an inspected container has a healthcheck, from its config (the image's merged with the
 * spec's at create: `Test` ["NONE"] or empty means none) or its health state. Undefined when the
 * answer has no config to tell, or one not understood.
 */
export function containerHasHealthcheck(raw: unknown): boolean | undefined {
  const container = obj(raw);
  const health = obj(container.State).Health;
  if (health !== undefined && health !== null) return true;
  if (container.Config === undefined) return undefined;
  const healthcheck = obj(container.Config).Healthcheck;
  if (healthcheck === undefined || healthcheck === null) return false;
  const test = obj(healthcheck).Test;
  // Docker writes Test as an array; anything else is not understood, so nothing is learned.
  if (test === undefined || test === null) return false;
  if (!Array.isArray(test)) return undefined;
  return test.length > 0 && test[0] !== 'NONE';
}

export function emptyTopology(): Topology {
  return { services: new Map(), tasks: new Map(), nodes: new Map() };
}
