/**
 * Request metrics per deployment, from Traefik's own Prometheus endpoints. Every interval the
 * instance holding the scraper lease scrapes each target, joins each Traefik service to its
 * deployment (service-directory.ts), sends each deployment's figures to the feed, and writes
 * finished minutes (target-ledger.ts, traffic-store.ts).
 *
 * Who scrapes: every instance given TRAEFIK_METRICS_URLS competes for one lease in the metrics
 * database; its holder scrapes every target, so each Traefik is read once and the feed gets one
 * `requests` frame per deployment and interval, summed across targets. The lease outlives three
 * intervals: when its holder stops, another takes over within that and continues each target from
 * its checkpoint, so no minute is lost or counted twice. While the database is away the holder
 * keeps scraping (nobody can take the lease from it), and its minutes wait.
 */
import { randomUUID } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { failureLogLevel } from '../lib/backoff.js';
import { addFigures, type Figures } from './figures.js';
import { requestFigures, type RequestFigures } from './request-figures.js';
import type { ServiceDirectory } from './service-directory.js';
import type { ServiceCounters, ServiceDelta } from './service-counters.js';
import { TargetLedger } from './target-ledger.js';
import { TraefikTarget, type TargetStatus } from './traefik-target.js';
import type { TrafficStore } from './traffic-store.js';

/** How stale the directory may be when a scrape names a service it does not know. */
const DIRECTORY_RETRY_MS = 2_000;
/** How often the directory is re-read anyway. */
const DIRECTORY_REFRESH_MS = 30_000;
const MAX_UNKNOWN_REPORTED = 20;
export const DNS_PREFIX = 'dns+';
/** A resolved target absent this many ticks in a row is dropped. */
const DROP_AFTER_TICKS = 12;

async function lookupAll(hostname: string): Promise<string[]> {
  const answers = await lookup(hostname, { all: true });
  return [...new Set(answers.map((a) => a.address))].sort();
}

export interface TrafficMonitorOptions {
  readonly targets: readonly string[];
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly maxBytes: number;
}

export interface TrafficStats {
  readonly instanceId: string;
  readonly holdsLease: boolean;
  readonly ticks: number;
  readonly lastTickAt: number | undefined;
  readonly targets: readonly (TargetStatus & ReturnType<TargetLedger['stats']>)[];
  /** Traefik services that map to no deployment: how many, and some of their names. */
  readonly unknownServices: number;
  readonly unknownServiceNames: readonly string[];
  readonly unknownRequests: number;
  readonly minutesWritten: number;
  readonly rowsWritten: number;
  readonly writeFailures: number;
  readonly lastWriteError: string | undefined;
  readonly rebases: number;
  readonly leaseErrors: number;
  readonly directory: ReturnType<ServiceDirectory['stats']>;
}

export class TrafficMonitor {
  readonly instanceId = randomUUID();
  /** Scraped URL → its target and ledger. A `dns+` entry adds one per address it resolves to. */
  private readonly byUrl = new Map<string, { target: TraefikTarget; ledger: TargetLedger; missing: number }>();
  private readonly resolved = new Map<string, string[]>();
  private holdsLease = false;
  private lastTickAt: number | undefined;
  private unknown = new Set<string>();
  private consecutiveWriteFailures = 0;
  private s = {
    ticks: 0,
    unknownRequests: 0,
    minutesWritten: 0,
    rowsWritten: 0,
    writeFailures: 0,
    lastWriteError: undefined as string | undefined,
    rebases: 0,
    leaseErrors: 0,
  };

  constructor(
    private readonly options: TrafficMonitorOptions,
    private readonly deps: {
      store: TrafficStore;
      directory: ServiceDirectory;
      publish: (figures: readonly RequestFigures[]) => void;
      log: Logger;
      clock?: () => number;
      /** Name resolution for `dns+` targets; default: getaddrinfo, every address. */
      lookup?: (hostname: string) => Promise<string[]>;
    },
  ) {
    for (const url of options.targets) if (!url.startsWith(DNS_PREFIX)) this.add(url);
  }

  private get targets() {
    return [...this.byUrl.values()];
  }

  private add(url: string): void {
    const o = this.options;
    this.byUrl.set(url, {
      target: new TraefikTarget(
        { url, timeoutMs: o.timeoutMs, maxBytes: o.maxBytes, intervalMs: o.intervalMs },
        { clock: this.deps.clock },
      ),
      ledger: new TargetLedger(url),
      missing: 0,
    });
  }

  /**
   * Expands `dns+` entries (`dns+http://tasks.traefik:8082/metrics`: every address the name has,
   * which for Swarm's `tasks.<service>` is every Traefik task) into one target each. A name that
   * does not resolve keeps its last addresses; an address gone for a minute is dropped once its
   * minutes are written (a replaced Traefik task has new counters anyway).
   */
  private async expand(): Promise<void> {
    const wanted = new Set<string>();
    for (const entry of this.options.targets) {
      if (!entry.startsWith(DNS_PREFIX)) {
        wanted.add(entry);
        continue;
      }
      const url = new URL(entry.slice(DNS_PREFIX.length));
      try {
        const addresses = await (this.deps.lookup ?? lookupAll)(url.hostname);
        this.resolved.set(
          entry,
          addresses.map((address) => {
            const target = new URL(url);
            target.hostname = address.includes(':') ? `[${address}]` : address;
            return target.toString();
          }),
        );
      } catch (error) {
        this.deps.log.debug({ err: error, entry }, 'could not resolve a dns+ traefik metrics target');
      }
      for (const target of this.resolved.get(entry) ?? []) wanted.add(target);
    }
    for (const url of wanted) if (!this.byUrl.has(url)) this.add(url);
    for (const [url, entry] of this.byUrl) {
      if (wanted.has(url)) entry.missing = 0;
      else if ((entry.missing += 1) > DROP_AFTER_TICKS && entry.ledger.idle()) {
        entry.target.shutdown();
        this.byUrl.delete(url);
      }
    }
  }

  get store(): TrafficStore {
    return this.deps.store;
  }

  private now(): number {
    return (this.deps.clock ?? Date.now)();
  }

  /** The lease lasts three intervals (15 s at least): a holder that stops is replaced within that. */
  private get leaseMs(): number {
    return Math.max(15_000, 3 * this.options.intervalMs);
  }

  stats(): TrafficStats {
    return {
      instanceId: this.instanceId,
      holdsLease: this.holdsLease,
      lastTickAt: this.lastTickAt,
      targets: this.targets.map(({ target, ledger }) => ({ ...target.status(), ...ledger.stats() })),
      unknownServices: this.unknown.size,
      unknownServiceNames: [...this.unknown].slice(0, MAX_UNKNOWN_REPORTED),
      ...this.s,
      directory: this.deps.directory.stats(),
    };
  }

  /** Targets that failed their last scrape (for /health). */
  downTargets(): TargetStatus[] {
    if (!this.holdsLease) return [];
    return this.targets.map(({ target }) => target.status()).filter((t) => t.lastScrapeAt !== undefined && !t.up);
  }

  /** One interval: lease, scrape, join, publish, write. Never throws. */
  async tick(): Promise<void> {
    this.s.ticks += 1;
    if (!(await this.keepLease())) return;
    const now = this.now();
    const intervalMs = this.lastTickAt === undefined ? this.options.intervalMs : now - this.lastTickAt;
    this.lastTickAt = now;
    await this.expand();
    await this.loadCheckpoints();
    // Every ledger rolls (a target being dropped still closes and writes its last minute).
    for (const { ledger } of this.targets) ledger.roll(now);
    const results = await Promise.all(
      this.targets
        .filter((t) => t.missing === 0)
        .map(async ({ target, ledger }) => ({ ledger, result: await target.scrape(ledger.counters) })),
    );
    await this.refreshDirectory(results.flatMap(({ result }) => (result.ok ? result.deltas : [])));
    let live: Map<string, Figures> | undefined;
    for (const { ledger, result } of results) {
      if (!result.ok) {
        this.deps.log.debug(
          { target: ledger.target, kind: result.kind, reason: result.reason },
          'traefik scrape failed',
        );
        continue;
      }
      if (result.baseline) continue;
      const byDeployment = this.join(result.deltas, ledger.counters);
      ledger.add(byDeployment);
      live ??= new Map();
      for (const [deploymentId, figures] of byDeployment)
        live.set(deploymentId, addFigures(live.get(deploymentId), figures, 'sum'));
    }
    if (live) this.publish(live, now, intervalMs);
    await this.write();
  }

  /** Writes what is finished and gives up the lease (shutdown). */
  async stop(): Promise<void> {
    for (const { target } of this.targets) target.shutdown();
    if (!this.holdsLease) return;
    await this.write();
    await this.deps.store.releaseLease(this.instanceId).catch(() => undefined);
    this.holdsLease = false;
  }

  private async keepLease(): Promise<boolean> {
    try {
      const held = await this.deps.store.claimLease(this.instanceId, this.leaseMs);
      if (held && !this.holdsLease) this.deps.log.info('took the traefik scraper lease');
      if (!held && this.holdsLease) {
        this.deps.log.warn('lost the traefik scraper lease to another instance');
        await this.write();
        for (const { ledger } of this.targets) ledger.reset();
        this.lastTickAt = undefined;
      }
      this.holdsLease = held;
    } catch (error) {
      // Nobody can take the lease while the database is away: a holder goes on.
      this.s.leaseErrors += 1;
      this.deps.log[failureLogLevel(this.s.leaseErrors)](
        { err: error, holds: this.holdsLease },
        'could not renew the traefik scraper lease',
      );
    }
    return this.holdsLease;
  }

  private async loadCheckpoints(): Promise<void> {
    for (const { ledger } of this.targets) {
      if (ledger.loaded) continue;
      try {
        ledger.load(await this.deps.store.readCheckpoint(ledger.target));
      } catch (error) {
        // Scrape anyway: a write finds the checkpoint and re-measures from it (rebase).
        this.deps.log.debug({ err: error, target: ledger.target }, 'could not read the traffic checkpoint');
      }
    }
  }

  private async refreshDirectory(deltas: readonly ServiceDelta[]): Promise<void> {
    const directory = this.deps.directory;
    const age = this.now() - (directory.lastRefresh ?? -Infinity);
    const unknown = deltas.some((d) => directory.deploymentOf(d.service) === undefined);
    if (age < DIRECTORY_REFRESH_MS && !(unknown && age >= DIRECTORY_RETRY_MS)) return;
    await directory.refresh().catch((error: unknown) => {
      this.deps.log.debug({ err: error }, 'could not read the routing table for the traffic join');
    });
  }

  /** Service deltas summed per deployment; services of no deployment are counted and dropped. */
  private join(deltas: readonly ServiceDelta[], counters: ServiceCounters): Map<string, Figures> {
    const bounds = counters.snapshotBounds();
    const byDeployment = new Map<string, Figures>();
    for (const { service, delta } of deltas) {
      const deploymentId = this.deps.directory.deploymentOf(service);
      if (deploymentId === undefined) {
        if (this.unknown.size < 10_000) this.unknown.add(service);
        this.s.unknownRequests += delta[0]! + delta[1]! + delta[2]! + delta[3]! + delta[4]! + delta[5]!;
        continue;
      }
      byDeployment.set(deploymentId, addFigures(byDeployment.get(deploymentId), { bounds, vector: delta }, 'sum'));
    }
    return byDeployment;
  }

  private publish(live: ReadonlyMap<string, Figures>, now: number, intervalMs: number): void {
    const frames: RequestFigures[] = [];
    for (const [deploymentId, figures] of live) frames.push(requestFigures(deploymentId, figures, now, intervalMs));
    try {
      this.deps.publish(frames);
    } catch (error) {
      this.deps.log.warn({ err: error }, 'could not publish request figures');
    }
  }

  private async write(): Promise<void> {
    for (const { ledger } of this.targets) {
      const work = ledger.work();
      if (!work) continue;
      try {
        const result = await this.deps.store.write(work, this.instanceId);
        if (result.ok) {
          ledger.written(work, result.seq);
          this.s.minutesWritten += work.minutes.length;
          this.s.rowsWritten += result.rows;
          this.consecutiveWriteFailures = 0;
          this.s.lastWriteError = undefined;
          continue;
        }
        this.s.rebases += 1;
        this.deps.log.info(
          { target: ledger.target, checkpoint: result.checkpoint?.seq, holder: result.checkpoint?.holder },
          'traffic checkpoint moved by another instance: re-measuring from it',
        );
        if (result.checkpoint)
          ledger.rebase(result.checkpoint, (counters, latest) => {
            const replayed = counters.replay(latest);
            return replayed.ok ? this.join(replayed.deltas, counters) : new Map<string, Figures>();
          });
        else ledger.reset();
      } catch (error) {
        this.s.writeFailures += 1;
        this.consecutiveWriteFailures += 1;
        this.s.lastWriteError = errorMessage(error);
        this.deps.log[failureLogLevel(this.consecutiveWriteFailures)](
          { err: error, target: ledger.target, pendingMinutes: ledger.stats().pendingMinutes },
          'could not write request metrics; keeping them',
        );
      }
    }
  }
}
