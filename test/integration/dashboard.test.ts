/**
 * Every metric the Grafana dashboard queries is one the service exports (with both roles).
 * Needs no real dependency: the app is built and scraped without listening.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';

const dashboard = path.resolve(import.meta.dirname, '../../deploy/grafana/swarm-edge.json');

describe('deploy/grafana/swarm-edge.json and /openapi.json', () => {
  it('query only metrics that /metrics exports, and describe only served paths', async () => {
    const app = await buildApp(
      loadConfig({
        LOG_LEVEL: 'silent',
        DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none',
        DOCKER_HOST: 'unix:///nonexistent/docker.sock',
        EDGE_ROLES: 'router,metrics',
        TRAEFIK_DYNAMIC_DIR: mkdtempSync('/tmp/swarm-edge-dash-'),
        FEED_AUTH: 'none',
        // Request metrics on, so their series are exported (nothing listens there).
        TRAEFIK_METRICS_URLS: 'http://127.0.0.1:9/metrics',
      }),
      { logger: false },
    );
    try {
      const exported = (await app.inject({ url: '/metrics' })).body;
      const json = JSON.parse(readFileSync(dashboard, 'utf8')) as {
        panels: Array<{ targets?: Array<{ expr: string }> }>;
      };
      const queried = new Set(
        json.panels
          .flatMap((p) => p.targets ?? [])
          .flatMap((t) => t.expr.match(/swarm_edge_[a-z0-9_]+/g) ?? [])
          .map((n) => n.replace(/_bucket$/, '')),
      );
      expect(queried.size).toBeGreaterThan(20);
      const missing = [...queried].filter((name) => !exported.includes(`# TYPE ${name} `));
      expect(missing).toEqual([]);

      // And every path of the OpenAPI document is served (not 404) by the same app.
      const openapi = (await app.inject({ url: '/openapi.json' })).json<{ paths: Record<string, unknown> }>();
      for (const route of Object.keys(openapi.paths)) {
        const status = (await app.inject({ url: route })).statusCode;
        expect({ route, status }).not.toEqual({ route, status: 404 });
      }
    } finally {
      await app.close();
    }
  });
});
