/**
 * Watching the routes while everything runs: a reader that polls each instance's Traefik file the
 * way Traefik's file provider would (it must never see an empty or partial document), and a
 * tracker that compares each file with the truth twice a second and keeps the longest lag.
 */
import { readFile } from 'node:fs/promises';
import type Docker from 'dockerode';
import type pg from 'pg';
import type { ServiceInstance } from './instance.js';
import {
  compareRoutes,
  computeTruth,
  parseRoutesFile,
  publishedRoutes,
  same,
  type Published,
  type RouteMap,
} from './truth.js';

export interface FileReaderStats {
  reads: number;
  /** A document that did not parse: a reader saw a file half written. */
  partial: number;
  /** A document with no router after one that had routers. */
  empty: number;
  /** Reads that found no file (before the first publish only). */
  missing: number;
  /** Changes of content seen. */
  versions: number;
  /** Domains of fuzzed rows found in a published rule (must stay 0). */
  injected: number;
}

/** Polls one instance's file every few ms, as a file provider would. */
export class FileReader {
  readonly stats: FileReaderStats = { reads: 0, partial: 0, empty: 0, missing: 0, versions: 0, injected: 0 };
  latest: RouteMap | undefined;
  private lastText = '';
  private hadRouters = false;
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly instance: ServiceInstance,
    private readonly isInjected: (rule: string) => boolean,
    private readonly everyMs = 20,
  ) {}

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      await this.readOnce();
      await new Promise((resolve) => setTimeout(resolve, this.everyMs));
    }
  }

  private async readOnce(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.instance.file, 'utf8');
    } catch {
      this.stats.missing += 1;
      return;
    }
    this.stats.reads += 1;
    if (text === this.lastText) return;
    let document: Published;
    try {
      document = parseRoutesFile(text);
    } catch {
      this.stats.partial += 1;
      return;
    }
    this.lastText = text;
    this.stats.versions += 1;
    const routes = publishedRoutes(document);
    if (routes.size === 0 && this.hadRouters) this.stats.empty += 1;
    this.hadRouters ||= routes.size > 0;
    for (const key of routes.keys()) if (this.isInjected(key)) this.stats.injected += 1;
    this.latest = routes;
  }
}

export interface LagStats {
  comparisons: number;
  /** Truth could not be read (dockerd or PostgreSQL down). */
  unknown: number;
  maxLagMs: number;
  /** Longest lag that started with no fault under way or recovering. */
  maxSteadyLagMs: number;
  episodes: number;
}

/** Compares each instance's file with the truth, twice a second. */
export class LagTracker {
  readonly stats = new Map<string, LagStats>();
  private readonly since = new Map<string, { at: number; steady: boolean }>();
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(
    private readonly docker: Docker,
    private readonly db: pg.Pool,
    private readonly network: string,
    private readonly readers: ReadonlyMap<ServiceInstance, FileReader>,
    private readonly faultActive: () => boolean,
  ) {
    for (const instance of readers.keys())
      this.stats.set(instance.name, { comparisons: 0, unknown: 0, maxLagMs: 0, maxSteadyLagMs: 0, episodes: 0 });
  }

  start(everyMs = 500): void {
    this.timer = setInterval(() => {
      if (this.busy) return;
      this.busy = true;
      void this.compare().finally(() => (this.busy = false));
    }, everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async compare(): Promise<void> {
    let truth: RouteMap;
    try {
      truth = await computeTruth(this.docker, this.db, this.network);
    } catch {
      for (const stats of this.stats.values()) stats.unknown += 1;
      return;
    }
    const now = Date.now();
    for (const [instance, reader] of this.readers) {
      const stats = this.stats.get(instance.name)!;
      if (!instance.running || reader.latest === undefined) {
        this.since.delete(instance.name); // a stopped instance's file is expected to be stale
        continue;
      }
      stats.comparisons += 1;
      const behind = this.since.get(instance.name);
      if (same(compareRoutes(truth, reader.latest))) {
        if (behind !== undefined) {
          const lag = now - behind.at;
          stats.maxLagMs = Math.max(stats.maxLagMs, lag);
          if (behind.steady) stats.maxSteadyLagMs = Math.max(stats.maxSteadyLagMs, lag);
          this.since.delete(instance.name);
        }
      } else if (behind === undefined) {
        stats.episodes += 1;
        this.since.set(instance.name, { at: now, steady: !this.faultActive() });
      } else if (this.faultActive()) {
        behind.steady = false;
      }
    }
  }
}
