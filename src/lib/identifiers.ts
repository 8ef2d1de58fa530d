/**
 * Identifiers that come from outside (deployment ids in rows, labels and websocket messages) and
 * end up in names, Redis channels and SQL parameters: 1-128 characters of letters, digits, _ . : -
 */
export const IDENTIFIER_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

export function isIdentifier(value: unknown): value is string {
  return typeof value === 'string' && IDENTIFIER_PATTERN.test(value);
}

/** A swarm object's id (service, task, node): 25 lowercase base-36 digits (swarmkit's identity.NewID). */
export function isSwarmId(value: unknown): value is string {
  return typeof value === 'string' && /^[a-z0-9]{25}$/.test(value);
}

/** A container's full id: 64 hexadecimal characters. */
export function isContainerId(value: unknown): value is string {
  return typeof value === 'string' && /^[0-9a-f]{64}$/.test(value);
}
