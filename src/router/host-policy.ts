/**
 * Which hosts a routing row may claim at all, before it is compared with other rows:
 * - reserved names (the platform's own API host, localhost, …) that no row may claim, exactly or,
 *   for a reserved suffix, anywhere under it;
 * - wildcards over a public suffix (`*.co.uk`, `*.github.io`), checked against the Public Suffix
 *   List (tldts, private domains included): such a row would take every tenant's names under it.
 *
 * Which of two rows keeps a host is decided in traefik-config.ts (the incumbent wins), under the
 * sharing policy here: with `deny`, a host belongs to one deployment, and another deployment may
 * not route a path under it either.
 */
import { getPublicSuffix } from 'tldts';

export type HostSharing = 'deny' | 'paths';

export interface HostPolicy {
  /** Hosts no row may claim (lowercase ASCII). */
  readonly reservedHosts: ReadonlySet<string>;
  /** No row may claim these names or any name under them (lowercase ASCII, without "*."). */
  readonly reservedSuffixes: readonly string[];
  /** deny: one deployment per host; paths: other deployments may route other paths under it. */
  readonly sharing: HostSharing;
}

export const DEFAULT_HOST_POLICY: HostPolicy = {
  reservedHosts: new Set(),
  reservedSuffixes: ['localhost'],
  sharing: 'deny',
};

/**
 * Parses the ROUTING_RESERVED_HOSTS list: `api.example.com` reserves that host, `*.example.com`
 * reserves example.com and every name under it. Entries are host names as rows give them.
 */
export function reservedFromList(entries: readonly string[]): Pick<HostPolicy, 'reservedHosts' | 'reservedSuffixes'> {
  const hosts = new Set<string>();
  const suffixes: string[] = [];
  for (const entry of entries) {
    const lowered = entry.toLowerCase().replace(/\.$/, '');
    if (lowered.startsWith('*.')) suffixes.push(lowered.slice(2));
    else hosts.add(lowered);
  }
  return { reservedHosts: hosts, reservedSuffixes: suffixes };
}

/** Why a host (ASCII, validated; `wildcard` for `*.host`) may not be claimed, or undefined. */
export function hostRefusal(host: string, wildcard: boolean, policy: HostPolicy): string | undefined {
  for (const suffix of policy.reservedSuffixes) {
    if (host === suffix || host.endsWith(`.${suffix}`)) return `is reserved (${suffix} and every name under it)`;
  }
  if (!wildcard && policy.reservedHosts.has(host)) return 'is reserved for the platform';
  if (wildcard) {
    // *.host matches one label: it covers a reserved host one label below it.
    for (const reserved of policy.reservedHosts) {
      if (reserved.endsWith(`.${host}`) && !reserved.slice(0, -host.length - 1).includes('.')) {
        return `would cover the reserved host ${reserved}`;
      }
    }
    if (getPublicSuffix(host, { allowPrivateDomains: true }) === host) {
      return `*.${host} would cover a public suffix (Public Suffix List): every owner's names under it`;
    }
  }
  return undefined;
}
