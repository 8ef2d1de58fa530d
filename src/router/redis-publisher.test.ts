import { describe, expect, it } from 'vitest';
import type { Topology } from '../discovery/index.js';
import { toKeyValues } from './redis-publisher.js';
import { renderTraefikConfig, type RenderOptions } from './traefik-config.js';
import type { RoutingRow } from './routing-table.js';
import { routingRow } from '../../test/fixtures/routing-rows.js';
import { swarmService, swarmTask, topologyOf } from '../../test/fixtures/swarm-topology.js';

const options: RenderOptions = {
  labelPrefix: 'cloud.obiente',
  entryPoints: { http: 'web', https: 'websecure' },
  defaultCertResolver: 'le',
  network: 'edge',
  fallbackUrl: 'http://edge.internal:8080',
};
const topology: Topology = topologyOf(
  [swarmService('s1', 'dep-a', { name: 'svc' })],
  [swarmTask('t1', 's1', '10.0.1.2')],
);
const row = (id: string, middleware: unknown): RoutingRow =>
  routingRow(id, { deployment_id: 'dep-a', target_port: 80, middleware });

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
