/**
 * The service's Prometheus metrics. This is the only module that imports prom-client: the rest of
 * the service reports through the small typed interfaces it implements (RouterTelemetry, ...).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RouterTelemetry } from '../router/index.js';

export interface Telemetry {
  readonly registry: Registry;
  readonly router: RouterTelemetry;
  /** Registers a gauge whose value is read at scrape time. */
  gauge(name: string, help: string, read: () => number): void;
  /** Registers a counter whose (monotonic) total is read at scrape time, from a component's own stats. */
  counter(name: string, help: string, read: () => number): void;
  /** A gauge with one label whose values are read at scrape time. */
  labelledGauge(name: string, help: string, label: string, read: () => Record<string, number>): void;
  /** A counter with one label whose (monotonic) totals are read at scrape time. */
  labelledCounter(name: string, help: string, label: string, read: () => Record<string, number>): void;
}

export function createTelemetry(): Telemetry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'swarm_edge_' });

  const published = new Counter({
    name: 'swarm_edge_routes_publish_total',
    help: 'Publishes of the Traefik config, by whether the output changed',
    labelNames: ['changed'],
    registers: [registry],
  });
  const routes = new Gauge({
    name: 'swarm_edge_routes_published',
    help: 'Routes in the published Traefik config',
    registers: [registry],
  });
  const rejectedNow = new Gauge({
    name: 'swarm_edge_routes_rejected',
    help: 'Routing rows currently rejected',
    registers: [registry],
  });
  const rejected = new Counter({
    name: 'swarm_edge_routes_rejected_total',
    help: 'Routing rows rejected, counted when a rejection first appears, by field',
    labelNames: ['field'],
    registers: [registry],
  });
  const failures = new Counter({
    name: 'swarm_edge_routes_publish_failures_total',
    help: 'Failed publishes, by target',
    labelNames: ['target'],
    registers: [registry],
  });
  const convergence = new Histogram({
    name: 'swarm_edge_route_convergence_seconds',
    help: 'From a change being seen (Docker event, table notification) to the routes file in place',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 15],
    registers: [registry],
  });
  const start = new Histogram({
    name: 'swarm_edge_route_start_seconds',
    help: "A local task start's way to the routes file, by stage: the daemon's event delivered, the start hint, waiting for a publish, the publish; and in total",
    labelNames: ['stage'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15],
    registers: [registry],
  });
  const write = new Histogram({
    name: 'swarm_edge_route_write_seconds',
    help: 'Time to put a changed routes file in place (write, fsync, rename)',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const render = new Histogram({
    name: 'swarm_edge_route_render_seconds',
    help: 'Render and serialise time of the Traefik config',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2],
    registers: [registry],
  });

  return {
    registry,
    router: {
      published: (r) => {
        published.inc({ changed: String(r.changed) });
        routes.set(r.routes);
        rejectedNow.set(r.rejected);
        render.observe(r.renderMs / 1000);
        if (r.changed) {
          convergence.observe(r.convergenceMs / 1000);
          write.observe(r.writeMs / 1000);
        }
      },
      rowRejected: (field) => rejected.inc({ field }),
      startPublished: ({ deliveryMs, hintMs, queueMs, publishMs }) => {
        start.observe({ stage: 'hint' }, hintMs / 1000);
        start.observe({ stage: 'queue' }, queueMs / 1000);
        start.observe({ stage: 'publish' }, publishMs / 1000);
        // Without the daemon's timestamp, the total starts when the event was read.
        start.observe({ stage: 'total' }, ((deliveryMs ?? 0) + hintMs + queueMs + publishMs) / 1000);
        if (deliveryMs !== undefined) start.observe({ stage: 'delivery' }, deliveryMs / 1000);
      },
      publishFailed: (target) => failures.inc({ target }),
    },
    gauge: (name, help, read) => {
      new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          this.set(read());
        },
      });
    },
    counter: (name, help, read) => {
      new Counter({
        name,
        help,
        registers: [registry],
        collect() {
          // The component keeps the total; mirror it.
          this.reset();
          this.inc(read());
        },
      });
    },
    labelledGauge: (name, help, label, read) => {
      new Gauge({
        name,
        help,
        labelNames: [label],
        registers: [registry],
        collect() {
          this.reset();
          for (const [value, n] of Object.entries(read())) this.set({ [label]: value }, n);
        },
      });
    },
    labelledCounter: (name, help, label, read) => {
      new Counter({
        name,
        help,
        labelNames: [label],
        registers: [registry],
        collect() {
          this.reset();
          for (const [value, n] of Object.entries(read())) this.inc({ [label]: value }, n);
        },
      });
    },
  };
}
