/**
 * TCP and UDP routes' share of the document: Traefik's `tcp` and `udp` sections. They are few
 * beside the HTTP routes, so they are plain text per route (cached by the renderer like an HTTP
 * route's), assembled after the `http` section on every publish (see streamSections).
 *
 * Traefik rules this follows: a TCP router with TLS matches on SNI (HostSNI, HostSNIRegexp for a
 * wildcard); without TLS a connection carries no server name, so the only rule that can match is
 * HostSNI(`*`) and the route holds its entry point alone; a UDP router has no rule. Servers are
 * `ip:port` addresses. A route with no running replica publishes nothing: TCP and UDP have no
 * 503 to answer with, and a service without servers is an error in Traefik.
 */
import type { SwarmService, Topology } from '../discovery/index.js';
import { compare, flowJson, priorityFor, q, serversFor, wildcardPattern } from './route-render.js';
import type { Route, StreamRoute } from './route-validation.js';

export interface StreamOutput {
  readonly kind: StreamRoute['kind'];
  readonly name: string;
  readonly state: 'active' | 'no-replicas';
  readonly servers: number;
  readonly warnings: readonly string[];
  /** The route's entries of each map: its name, and its line (`   "name": {...}`). */
  readonly middlewares: readonly StreamEntry[];
  readonly routers: readonly StreamEntry[];
  readonly services: readonly StreamEntry[];
}

type StreamEntry = readonly [name: string, line: string];

/** A TCP middleware entry is named `<route>-<type, lowercase>`, as an HTTP one. */
const suffixOf = (type: string) => `-${type.toLowerCase()}`;

export function renderStreamRoute(
  route: Route,
  name: string,
  services: readonly SwarmService[],
  topology: Topology,
  network: string | undefined,
): StreamOutput {
  const stream = route.stream!;
  let warnings = route.warnings;
  const warn = (message: string) => {
    if (warnings === route.warnings) warnings = [...route.warnings];
    (warnings as string[]).push(message);
  };
  const addresses = serversFor(route, services, topology, { network }, warn, 'address');
  const base = { kind: stream.kind, name, servers: addresses.length, warnings };
  if (addresses.length === 0) return { ...base, state: 'no-replicas', middlewares: [], routers: [], services: [] };

  const entry = (entryName: string, value: unknown): StreamEntry => [
    entryName,
    `   ${q(entryName)}: ${flowJson(value)}`,
  ];
  const middlewares: StreamEntry[] = [];
  for (const type of stream.middlewareOrder)
    middlewares.push(entry(name + suffixOf(type), { [type]: stream.middlewares[type] }));

  const router: Record<string, unknown> = { entryPoints: [stream.entryPoint], service: name };
  if (stream.kind === 'tcp') {
    router.rule = stream.tls === undefined ? 'HostSNI(`*`)' : sniRule(route);
    if (stream.tls !== undefined) router.priority = priorityFor(route);
    if (middlewares.length > 0) router.middlewares = middlewares.map(([entryName]) => entryName);
    if (stream.tls === 'passthrough') router.tls = { passthrough: true };
    else if (stream.tls === 'terminate') router.tls = { certResolver: route.tls!.certResolver };
  }
  return {
    ...base,
    state: 'active',
    middlewares,
    routers: [entry(name, router)],
    services: [entry(name, { loadBalancer: { servers: addresses.map((address) => ({ address })) } })],
  };
}

/** Hosts are validated [a-z0-9.-]: nothing in them can leave the backquotes. */
function sniRule(route: Route): string {
  if (route.wildcard) return `HostSNIRegexp(\`${wildcardPattern(route.host)}\`)`;
  return `HostSNI(\`${route.host}\`)`;
}

const MAPS = ['middlewares', 'routers', 'services'] as const;

/**
 * The document's `tcp` and `udp` sections for these routes (names unique), as the text that
 * follows the `http` section: `,\n "tcp": {...}`, each map in entry-name order. Empty when no
 * route publishes; an empty map is left out, as Traefik wants.
 */
export function streamSections(outputs: readonly StreamOutput[]): string {
  let text = '';
  for (const kind of ['tcp', 'udp'] as const) {
    const maps: string[] = [];
    for (const map of MAPS) {
      const entries = outputs.filter((o) => o.kind === kind).flatMap((o) => o[map]);
      entries.sort((a, b) => compare(a[0], b[0]));
      if (entries.length > 0) maps.push(`  ${q(map)}: {\n${entries.map(([, line]) => line).join(',\n')}\n  }`);
    }
    if (maps.length > 0) text += `,\n ${q(kind)}: {\n${maps.join(',\n')}\n }`;
  }
  return text;
}
