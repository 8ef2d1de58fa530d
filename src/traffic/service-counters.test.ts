import { describe, expect, it } from 'vitest';
import { goFloat, TraefikExposition } from '../../test/harness/traefik-exposition.js';
import { requestsOf, SLOT } from './figures.js';
import { ServiceCounters, type ScrapeOutcome } from './service-counters.js';

function scrape(counters: ServiceCounters, text: string, chunk = text.length): ScrapeOutcome {
  counters.begin();
  for (let i = 0; i < text.length; i += chunk) counters.write(text.slice(i, i + chunk));
  return counters.finish();
}

function deltasOf(outcome: ScrapeOutcome): Map<string, Float64Array> {
  if (!outcome.ok) throw new Error(outcome.reason);
  return new Map(outcome.deltas.map((d) => [d.service, d.delta]));
}

describe('ServiceCounters', () => {
  it('takes the first scrape as the baseline, then reports what each scrape added', () => {
    const traefik = new TraefikExposition();
    const counters = new ServiceCounters();
    traefik.observe({ service: 'a@file' }, 5);
    const first = scrape(counters, traefik.text());
    expect(first.ok && first.baseline).toBe(true);
    traefik.observe({ service: 'a@file', code: 503, seconds: 0.3 }, 2);
    traefik.observe({ service: 'a@file', method: 'POST' }, 1);
    const delta = deltasOf(scrape(counters, traefik.text())).get('a@file')!;
    expect(requestsOf(delta)).toBe(3);
    expect(delta[SLOT.status + 1]).toBe(1);
    expect(delta[SLOT.status + 4]).toBe(2);
    expect(delta[SLOT.durationCount]).toBe(3);
    expect(delta[SLOT.responseBytes]).toBe(3000);
  });

  it('reads values as Go writes them (1e+06) and is indifferent to where chunks are cut', () => {
    expect(goFloat(1_000_000)).toBe('1e+06');
    const traefik = new TraefikExposition();
    traefik.observe({ service: 'a@file' }, 999_999);
    const whole = new ServiceCounters();
    const cut = new ServiceCounters();
    scrape(whole, traefik.text());
    scrape(cut, traefik.text(), 7);
    traefik.observe({ service: 'a@file' }, 1_234_567);
    expect(traefik.text()).toContain('2.234566e+06');
    const a = deltasOf(scrape(whole, traefik.text())).get('a@file')!;
    const b = deltasOf(scrape(cut, traefik.text(), 13)).get('a@file')!;
    expect(requestsOf(a)).toBe(1_234_567);
    expect(Array.from(b)).toEqual(Array.from(a));
  });

  it('counts a restarted Traefik from zero, never a negative or huge delta', () => {
    const traefik = new TraefikExposition();
    const counters = new ServiceCounters();
    traefik.observe({ service: 'a@file' }, 1000);
    scrape(counters, traefik.text());
    traefik.restart();
    traefik.observe({ service: 'a@file' }, 7);
    const outcome = scrape(counters, traefik.text());
    expect(outcome.ok && outcome.reset).toBe(true);
    expect(requestsOf(deltasOf(outcome).get('a@file')!)).toBe(7);
  });

  it('sees a restart that counted past the old values by the start time', () => {
    const traefik = new TraefikExposition();
    const counters = new ServiceCounters();
    traefik.observe({ service: 'a@file' }, 5);
    scrape(counters, traefik.text());
    traefik.restart();
    traefik.observe({ service: 'a@file' }, 9);
    expect(requestsOf(deltasOf(scrape(counters, traefik.text())).get('a@file')!)).toBe(9);
  });

  it('counts a service whose series were dropped and re-created from zero', () => {
    const traefik = new TraefikExposition();
    const counters = new ServiceCounters();
    traefik.observe({ service: 'a@file' }, 50);
    traefik.observe({ service: 'b@file' }, 50);
    scrape(counters, traefik.text());
    traefik.remove('a@file');
    scrape(counters, traefik.text());
    traefik.observe({ service: 'a@file' }, 4);
    expect(requestsOf(deltasOf(scrape(counters, traefik.text())).get('a@file')!)).toBe(4);
  });

  it('refuses a malformed scrape whole, and the next good one covers the gap', () => {
    const traefik = new TraefikExposition();
    const counters = new ServiceCounters();
    traefik.observe({ service: 'a@file' }, 10);
    scrape(counters, traefik.text());
    traefik.observe({ service: 'a@file' }, 5);
    for (const bad of [
      'traefik_service_requests_total{code="200",service="a@file"} lots\n',
      'traefik_service_requests_total{code="200",service="a@file"} -5\n',
      'traefik_service_requests_total{code="200",service="a@file"} +Inf\n',
      'traefik_service_requests_total{code="2OO",service="a@file"} 1\n',
      'traefik_service_requests_total{code="200",service="a@file" 1\n',
      'traefik_service_requests_total{code="200",service="x@file",service="a@file"} 1\n',
      'traefik_service_request_duration_seconds_bucket{code="200",service="a@file",le="soon"} 1\n',
      'traefik_service_requests_total\n',
    ]) {
      const outcome = scrape(counters, traefik.text() + bad);
      expect(outcome.ok, bad).toBe(false);
    }
    expect(requestsOf(deltasOf(scrape(counters, traefik.text())).get('a@file')!)).toBe(5);
  });

  it('keeps a service label that holds quotes, braces and newlines as one name', () => {
    const traefik = new TraefikExposition();
    const counters = new ServiceCounters();
    const hostile = 'evil"} 9999\ntraefik_service_requests_total{code="200",service="victim@file"} 1';
    traefik.observe({ service: hostile }, 1);
    traefik.observe({ service: 'victim@file' }, 1);
    scrape(counters, traefik.text());
    traefik.observe({ service: hostile }, 2);
    const deltas = deltasOf(scrape(counters, traefik.text()));
    expect(requestsOf(deltas.get(hostile)!)).toBe(2);
    expect(requestsOf(deltas.get('victim@file')!)).toBe(0);
  });

  it('continues from a snapshot (a checkpoint) and re-measures up to a later one', () => {
    const traefik = new TraefikExposition();
    const first = new ServiceCounters();
    traefik.observe({ service: 'a@file' }, 10);
    scrape(first, traefik.text());
    const checkpoint = first.snapshot();
    traefik.observe({ service: 'a@file' }, 6);
    scrape(first, traefik.text());
    traefik.observe({ service: 'b@http' }, 2);
    scrape(first, traefik.text());

    const second = new ServiceCounters();
    second.restore(checkpoint);
    const replayed = deltasOf(second.replay(first.snapshot()));
    expect(requestsOf(replayed.get('a@file')!)).toBe(6);
    expect(requestsOf(replayed.get('b@http')!)).toBe(2);
    traefik.observe({ service: 'a@file' }, 1);
    expect(requestsOf(deltasOf(scrape(second, traefik.text())).get('a@file')!)).toBe(1);
  });
});
