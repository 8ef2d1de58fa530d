import { describe, expect, it } from 'vitest';
import type { SwarmNode, Topology } from '../discovery/index.js';
import { toKeyValues } from './redis-publisher.js';
import { renderTraefikConfig, type RenderOptions } from './traefik-config.js';
import type { RoutingRow } from './routing-table.js';

const options: RenderOptions = {
  labelPrefix: 'cloud.obiente',
  entryPoints: { http: 'web', https: 'websecure' },
  defaultCertResolver: 'le',
  network: 'edge',
  fallbackUrl: 'http://edge.internal:8080',
};
const node: SwarmNode = {
  id: 'n1',
  hostname: 'n',
  address: '127.0.0.1',
  role: 'manager',
  availability: 'active',
  state: 'ready',
  leader: true,
  engineVersion: '1',
  cpus: 1,
  memoryBytes: 1,
  labels: {},
};
const topology: Topology = {
  services: new Map([
    [
      's1',
      {
        id: 's1',
        name: 'svc',
        deploymentId: 'dep-a',
        serviceName: 'default',
        mode: 'replicated',
        replicas: 1,
        ports: [],
        hostNetwork: false,
        labels: {},
      },
    ],
  ]),
  tasks: new Map([
    [
      's1',
      [
        {
          id: 't1',
          serviceId: 's1',
          nodeId: 'n1',
          state: 'running',
          desiredState: 'running',
          containerId: 'c',
          addresses: [{ networkId: 'x', networkName: 'edge', ip: '10.0.1.2' }],
        },
      ],
    ],
  ]),
  nodes: new Map([['n1', node]]),
};
const row = (id: string, middleware: unknown): RoutingRow => ({
  id,
  deployment_id: 'dep-a',
  domain: `${id}.example.com`,
  service_name: 'default',
  path_prefix: '',
  target_port: 80,
  protocol: 'http',
  ssl_enabled: false,
  ssl_cert_resolver: null,
  load_balancer_algo: null,
  middleware,
});

describe('toKeyValues', () => {
  it('writes a middleware without options as <type> = true, so every router names a middleware that exists', () => {
    const rows = [
      row('a', { compress: true }),
      row('b', { headers: {} }),
      row('c', { headers: { customRequestHeaders: {} } }),
      row('d', { compress: true, rateLimit: { average: 5 } }),
    ];
    const { config, statuses } = renderTraefikConfig(rows, topology, options);
    expect(statuses.every((s) => s.state === 'active')).toBe(true);
    const pairs = toKeyValues(config, 'traefik');
    const routers = config.http.routers as Record<string, { middlewares?: string[] }>;
    let named = 0;
    for (const router of Object.values(routers)) {
      for (const middleware of router.middlewares ?? []) {
        named += 1;
        const keys = [...pairs.keys()].filter((key) => key.startsWith(`traefik/http/middlewares/${middleware}/`));
        expect(keys.length, middleware).toBeGreaterThan(0);
      }
    }
    expect(named).toBe(5);
    expect([...pairs].filter(([key]) => key.endsWith('/compress'))).toHaveLength(2);
    expect([...pairs].filter(([key]) => key.endsWith('/headers')).map(([, value]) => value)).toEqual(['true', 'true']);
  });
});
