/**
 * What bench/swarm-scale.ts and its observer (bench/scale-observer.ts) both read: the daemon's
 * tasks, and the addresses in the routes file.
 */
import { readFileSync } from 'node:fs';

export interface TaskJson {
  ID: string;
  ServiceID: string;
  DesiredState: string;
  Status: { State: string; Timestamp?: string; ContainerStatus?: { ContainerID?: string } };
  NetworksAttachments?: Array<{ Network: { Spec: { Name: string } }; Addresses: string[] }>;
}

const SERVER = /http:\/\/(\d+\.\d+\.\d+\.\d+):8080/g;

/** A task's address on the benchmark's overlay network. */
export const ipOf = (task: TaskJson) =>
  task.NetworksAttachments?.find((a) => a.Network.Spec.Name === 'edge-net')?.Addresses[0]?.split('/')[0];

/** The server addresses the routes file holds now (none while it cannot be read). */
export function fileIps(file: string): Set<string> {
  try {
    return new Set([...readFileSync(file, 'utf8').matchAll(SERVER)].map((m) => m[1]!));
  } catch {
    return new Set<string>();
  }
}
