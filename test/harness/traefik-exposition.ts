import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Traefik v3's Prometheus exposition, written as Traefik writes it (pkg/metrics/prometheus.go
 * through client_golang's text format): the service families with their label sets in client_golang's
 * order (label names sorted, `le` last on buckets), cumulative buckets with +Inf, `_sum` and
 * `_count`, values formatted as Go's strconv 'g' does (1e+06, not 1000000), HELP and TYPE lines,
 * and the process, Go, entry point and config series that come with them. Tests and benchmarks
 * drive the counters; the text is what a scraper of a real Traefik reads.
 */

export const TRAEFIK_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface Series {
  requests: number;
  requestBytes: number;
  responseBytes: number;
  durationSum: number;
  /** Cumulative counts per TRAEFIK_BUCKETS bound, then +Inf. */
  buckets: number[];
}

export interface Observation {
  readonly service: string;
  readonly code?: number;
  readonly method?: string;
  readonly protocol?: string;
  readonly seconds?: number;
  readonly requestBytes?: number;
  readonly responseBytes?: number;
}

/** Go's strconv.FormatFloat(v, 'g', -1, 64), as client_golang's writeFloat uses it. */
export function goFloat(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  if (value === 0) return '0';
  const [mantissa, exponentText] = value.toExponential().split('e') as [string, string];
  const exponent = Number(exponentText);
  if (exponent < -4 || exponent >= 21 || exponent >= 6)
    return `${mantissa}e${exponent < 0 ? '-' : '+'}${String(Math.abs(exponent)).padStart(2, '0')}`;
  return String(value);
}

function escapeLabel(value: string): string {
  return value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');
}

export class TraefikExposition {
  /** service → "code|method|protocol" → series. */
  private readonly services = new Map<string, Map<string, Series>>();
  /** service → "method|protocol" → open connections. */
  private readonly open = new Map<string, Map<string, number>>();
  startTime = 1_764_500_000;
  constructor(readonly buckets: readonly number[] = TRAEFIK_BUCKETS) {}

  observe(o: Observation, times = 1): void {
    const key = `${o.code ?? 200}|${o.method ?? 'GET'}|${o.protocol ?? 'http'}`;
    let byKey = this.services.get(o.service);
    if (!byKey) this.services.set(o.service, (byKey = new Map<string, Series>()));
    let series = byKey.get(key);
    if (!series) {
      series = { requests: 0, requestBytes: 0, responseBytes: 0, durationSum: 0, buckets: this.buckets.map(() => 0) };
      series.buckets.push(0);
      byKey.set(key, series);
    }
    const seconds = o.seconds ?? 0.02;
    series.requests += times;
    series.requestBytes += (o.requestBytes ?? 100) * times;
    series.responseBytes += (o.responseBytes ?? 1000) * times;
    series.durationSum += seconds * times;
    this.buckets.forEach((le, i) => {
      if (seconds <= le) series.buckets[i]! += times;
    });
    series.buckets[this.buckets.length]! += times;
  }

  setOpenConnections(service: string, value: number, method = 'GET', protocol = 'http'): void {
    let byKey = this.open.get(service);
    if (!byKey) this.open.set(service, (byKey = new Map<string, number>()));
    byKey.set(`${method}|${protocol}`, value);
  }

  /** Traefik restarted: every series gone, a new start time. */
  restart(): void {
    this.services.clear();
    this.open.clear();
    this.startTime += 3_600;
  }

  /** Traefik dropped a service's series (gone from its configuration). */
  remove(service: string): void {
    this.services.delete(service);
    this.open.delete(service);
  }

  text(): string {
    const out: string[] = [];
    const family = (name: string, type: string, help: string) =>
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    family('go_goroutines', 'gauge', 'Number of goroutines that currently exist.');
    out.push('go_goroutines 42');
    family('process_start_time_seconds', 'gauge', 'Start time of the process since unix epoch in seconds.');
    out.push(`process_start_time_seconds ${goFloat(this.startTime)}`);
    family('traefik_config_reloads_total', 'counter', 'Config reloads');
    out.push('traefik_config_reloads_total 3');
    family(
      'traefik_entrypoint_requests_total',
      'counter',
      'How many HTTP requests processed on an entrypoint, partitioned by status code, protocol, and method.',
    );
    out.push('traefik_entrypoint_requests_total{code="200",entrypoint="web",method="GET",protocol="http"} 12');
    family('traefik_open_connections', 'gauge', 'How many open connections exist, by entryPoint and protocol');
    out.push('traefik_open_connections{entrypoint="web",protocol="TCP"} 2');

    const sorted = [...this.services.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const each = (write: (labels: string, series: Series) => void) => {
      for (const [service, byKey] of sorted)
        for (const [key, series] of [...byKey.entries()].sort()) {
          const [code, method, protocol] = key.split('|') as [string, string, string];
          write(`code="${code}",method="${method}",protocol="${protocol}",service="${escapeLabel(service)}"`, series);
        }
    };
    family(
      'traefik_service_open_connections',
      'gauge',
      'How many open connections exist on a service, partitioned by method and protocol.',
    );
    for (const [service, byKey] of [...this.open.entries()].sort())
      for (const [key, value] of byKey) {
        const [method, protocol] = key.split('|') as [string, string];
        out.push(
          `traefik_service_open_connections{method="${method}",protocol="${protocol}",service="${escapeLabel(service)}"} ${goFloat(value)}`,
        );
      }
    family(
      'traefik_service_request_duration_seconds',
      'histogram',
      'How long it took to process the request on a service, partitioned by status code, protocol, and method.',
    );
    each((labels, series) => {
      this.buckets.forEach((le, i) =>
        out.push(
          `traefik_service_request_duration_seconds_bucket{${labels},le="${goFloat(le)}"} ${goFloat(series.buckets[i]!)}`,
        ),
      );
      out.push(
        `traefik_service_request_duration_seconds_bucket{${labels},le="+Inf"} ${goFloat(series.buckets[this.buckets.length]!)}`,
      );
      out.push(`traefik_service_request_duration_seconds_sum{${labels}} ${goFloat(series.durationSum)}`);
      out.push(`traefik_service_request_duration_seconds_count{${labels}} ${goFloat(series.requests)}`);
    });
    family(
      'traefik_service_requests_bytes_total',
      'counter',
      'The total size of requests in bytes handled by a service, partitioned by status code, protocol, and method.',
    );
    each((labels, series) =>
      out.push(`traefik_service_requests_bytes_total{${labels}} ${goFloat(series.requestBytes)}`),
    );
    family(
      'traefik_service_requests_total',
      'counter',
      'How many HTTP requests processed on a service, partitioned by status code, protocol, and method.',
    );
    each((labels, series) => out.push(`traefik_service_requests_total{${labels}} ${goFloat(series.requests)}`));
    family(
      'traefik_service_responses_bytes_total',
      'counter',
      'The total size of responses in bytes handled by a service, partitioned by status code, protocol, and method.',
    );
    each((labels, series) =>
      out.push(`traefik_service_responses_bytes_total{${labels}} ${goFloat(series.responseBytes)}`),
    );
    family('traefik_service_retries_total', 'counter', 'How many request retries happened on a service.');
    for (const [service] of sorted) out.push(`traefik_service_retries_total{service="${escapeLabel(service)}"} 0`);
    return `${out.join('\n')}\n`;
  }
}

export type StandInMode = 'ok' | 'error' | 'malformed' | 'oversized';

/**
 * A loopback HTTP server that answers GET /metrics with `exposition.text()`, as Traefik's metrics
 * entry point does; `mode` makes it fail (500), write a broken line, or write far too much.
 */
export async function serveExposition(
  exposition: TraefikExposition,
  listen: { host?: string; port?: number } = {},
): Promise<{
  url: string;
  mode: StandInMode;
  scrapes: number;
  close(): Promise<void>;
}> {
  const state = {
    url: '',
    mode: 'ok' as StandInMode,
    scrapes: 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  const server = createServer((request, response) => {
    state.scrapes += 1;
    if (request.url !== '/metrics' || state.mode === 'error') {
      response.writeHead(request.url !== '/metrics' ? 404 : 500).end('no');
      return;
    }
    response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
    if (state.mode === 'oversized') {
      // Streamed without a content-length: the scraper must stop reading by itself.
      const line = `${'traefik_service_retries_total{service="x@file"} 0\n'.repeat(1000)}`;
      let sent = 0;
      const more = () => {
        while (sent < (64 * 1024 * 1024) / line.length) {
          sent += 1;
          if (!response.write(line)) return void response.once('drain', more);
        }
        response.end();
      };
      response.on('close', () => (sent = Infinity));
      more();
      return;
    }
    const text = exposition.text();
    response.end(
      state.mode === 'malformed'
        ? `${text}traefik_service_requests_total{code="200",service="a@file"} NaN-ish\n`
        : text,
    );
  });
  const host = listen.host ?? '127.0.0.1';
  await new Promise<void>((resolve) => server.listen(listen.port ?? 0, host, resolve));
  const address = server.address() as AddressInfo;
  state.url = `http://${host}:${address.port}/metrics`;
  return state;
}
