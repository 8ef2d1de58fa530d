/**
 * One Traefik's Prometheus endpoint: scraped with a timeout and a size bound, behind its own
 * circuit breaker, its exposition streamed into the target's counters (service-counters.ts) as it
 * arrives, so a large exposition is never held whole. A failed, malformed or oversized scrape
 * changes no counter: the next good one covers the gap.
 */
import http from 'node:http';
import https from 'node:https';
import { isAscii } from 'node:buffer';
import { StringDecoder } from 'node:string_decoder';
import { createBreaker, type Breaker } from '../lib/breaker.js';
import { errorMessage } from '../lib/errors.js';
import type { ScrapeOutcome, ServiceCounters } from './service-counters.js';

export interface TargetOptions {
  readonly url: string;
  readonly timeoutMs: number;
  readonly maxBytes: number;
  /** The scrape interval: the breaker's first wait before a trial. */
  readonly intervalMs: number;
}

export type ScrapeResult =
  | (ScrapeOutcome & { readonly ok: true; readonly bytes: number; readonly durationMs: number })
  | { readonly ok: false; readonly kind: 'down' | 'malformed' | 'oversized'; readonly reason: string };

class ScrapeRefused extends Error {
  constructor(
    readonly kind: 'malformed' | 'oversized',
    message: string,
  ) {
    super(message);
  }
}

export interface TargetStatus {
  readonly url: string;
  readonly up: boolean;
  readonly lastScrapeAt: number | undefined;
  readonly lastSuccessAt: number | undefined;
  readonly lastError: string | undefined;
  readonly lastBytes: number;
  readonly lastDurationMs: number;
  readonly scrapes: number;
  readonly failures: number;
  readonly malformed: number;
  readonly oversized: number;
  readonly breaker: ReturnType<Breaker<[ServiceCounters], ScrapeResult>['stats']>;
}

export class TraefikTarget {
  private readonly breaker: Breaker<[ServiceCounters], ScrapeResult>;
  private s = {
    up: false,
    lastScrapeAt: undefined as number | undefined,
    lastSuccessAt: undefined as number | undefined,
    lastError: undefined as string | undefined,
    lastBytes: 0,
    lastDurationMs: 0,
    scrapes: 0,
    failures: 0,
    malformed: 0,
    oversized: 0,
  };

  constructor(
    readonly options: TargetOptions,
    private readonly deps: { clock?: () => number } = {},
  ) {
    this.breaker = createBreaker((counters: ServiceCounters) => this.fetchInto(counters), {
      name: `traefik-metrics ${options.url}`,
      timeoutMs: options.timeoutMs + 1_000,
      resetMs: options.intervalMs,
      maxResetMs: 60_000,
      windowMs: 4 * options.intervalMs,
      errorThresholdPercentage: 50,
      volumeThreshold: 2,
      // A malformed exposition is the target's content, not its availability.
      isCallerError: (error) => error instanceof ScrapeRefused,
    });
  }

  get url(): string {
    return this.options.url;
  }

  status(): TargetStatus {
    return { url: this.options.url, ...this.s, breaker: this.breaker.stats() };
  }

  /** Scrapes into `counters`; never throws. */
  async scrape(counters: ServiceCounters): Promise<ScrapeResult> {
    const now = (this.deps.clock ?? Date.now)();
    this.s.scrapes += 1;
    this.s.lastScrapeAt = now;
    try {
      const result = await this.breaker.fire(counters);
      if (result.ok) {
        this.s.up = true;
        this.s.lastSuccessAt = now;
        this.s.lastError = undefined;
        this.s.lastBytes = result.bytes;
        this.s.lastDurationMs = result.durationMs;
      }
      return result;
    } catch (error) {
      const kind = error instanceof ScrapeRefused ? error.kind : 'down';
      const reason = errorMessage(error);
      this.s.lastError = reason;
      if (kind === 'malformed') this.s.malformed += 1;
      else if (kind === 'oversized') this.s.oversized += 1;
      else {
        this.s.failures += 1;
        this.s.up = false;
      }
      return { ok: false, kind, reason };
    }
  }

  shutdown(): void {
    this.breaker.shutdown();
    this.agents.http?.destroy();
    this.agents.https?.destroy();
  }

  /**
   * node:http rather than fetch: at 120,000 lines a scrape, fetch's web streams cost twice the CPU
   * of the whole parse (bench/traffic.ts). One kept-alive connection per target.
   */
  private fetchInto(counters: ServiceCounters): Promise<ScrapeResult> {
    const started = performance.now();
    const url = new URL(this.options.url);
    const client = url.protocol === 'https:' ? https : http;
    return new Promise<ScrapeResult>((resolve, reject) => {
      let settled = false;
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        request.destroy();
        reject(error);
      };
      const request = client.get(
        url,
        {
          agent: this.agent(url.protocol),
          headers: { accept: 'text/plain;version=0.0.4' },
          signal: AbortSignal.timeout(this.options.timeoutMs),
        },
        (response) => {
          const status = response.statusCode ?? 0;
          if (status !== 200) return fail(new Error(`HTTP ${status} from ${this.options.url}`));
          const declared = Number(response.headers['content-length'] ?? NaN);
          if (declared > this.options.maxBytes)
            return fail(
              new ScrapeRefused('oversized', `exposition of ${declared} bytes is over ${this.options.maxBytes}`),
            );
          // StringDecoder keeps a character cut between chunks whole. Until a chunk holds anything
          // but ASCII (Traefik's names rarely do), latin1 reads it the same, for a third less CPU.
          const decoder = new StringDecoder('utf8');
          let ascii = true;
          let bytes = 0;
          counters.begin();
          response.on('data', (chunk: Buffer) => {
            if (settled) return;
            bytes += chunk.length;
            if (bytes > this.options.maxBytes)
              return fail(new ScrapeRefused('oversized', `exposition over ${this.options.maxBytes} bytes`));
            if (ascii && isAscii(chunk)) counters.write(chunk.toString('latin1'));
            else {
              ascii = false;
              counters.write(decoder.write(chunk));
            }
          });
          response.on('error', fail);
          response.on('aborted', () => fail(new Error('connection closed mid-exposition')));
          response.on('end', () => {
            if (settled) return;
            counters.write(decoder.end());
            const outcome = counters.finish();
            if (!outcome.ok) return fail(new ScrapeRefused('malformed', outcome.reason));
            settled = true;
            resolve({ ...outcome, bytes, durationMs: performance.now() - started });
          });
        },
      );
      request.on('error', fail);
    });
  }

  private agents: { http?: http.Agent; https?: https.Agent } = {};
  private agent(protocol: string): http.Agent {
    if (protocol === 'https:') return (this.agents.https ??= new https.Agent({ keepAlive: true, maxSockets: 1 }));
    return (this.agents.http ??= new http.Agent({ keepAlive: true, maxSockets: 1 }));
  }
}
