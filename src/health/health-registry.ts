/**
 * What the service knows of its dependencies, kept up to date by the loops that use them, so that
 * GET /health answers from memory and never waits on a dependency.
 *
 * A dependency that has never been reached is critical: the service has no good state to serve
 * from it, so /health answers 503. Once it has been up, losing it only degrades the service: it
 * keeps the last good state (routes, live metrics) and recovers by itself.
 */
export type DependencyStatus = 'up' | 'down' | 'disabled';
export type OverallStatus = 'ok' | 'degraded' | 'unavailable';

export interface DependencyReport {
  readonly status: DependencyStatus;
  readonly since: string;
  readonly detail?: string;
  /** True while this dependency being down stops the service from doing its job. */
  readonly critical: boolean;
  /** The last outages after which it came back (failovers, restarts), newest last. */
  readonly recoveries?: readonly Recovery[];
}

export interface Recovery {
  readonly down: string;
  readonly up: string;
  readonly seconds: number;
  /** What the dependency said when it went down. */
  readonly cause: string | undefined;
}

const RECOVERIES_KEPT = 10;

export interface HealthReport {
  readonly status: OverallStatus;
  readonly dependencies: Readonly<Record<string, DependencyReport>>;
  readonly components: Readonly<Record<string, unknown>>;
}

interface DependencyState {
  status: DependencyStatus;
  since: number;
  detail: string | undefined;
  everUp: boolean;
  /** Optional dependencies (Redis) never make the service unavailable. */
  optional: boolean;
  /** The detail it went down with (the first one, not the last retry's). */
  cause: string | undefined;
  recoveries: Recovery[];
}

/** `downMs`: on a change to up after an outage, how long the dependency was down. */
export type StatusListener = (
  name: string,
  status: DependencyStatus,
  detail: string | undefined,
  downMs?: number,
) => void;

export class HealthRegistry {
  private readonly dependencies = new Map<string, DependencyState>();
  private readonly components = new Map<string, () => unknown>();
  private readonly listeners: StatusListener[] = [];

  constructor(private readonly now: () => number = Date.now) {}

  /** Declares a dependency. A disabled one is reported but never affects the overall status. */
  register(name: string, options: { enabled: boolean; optional?: boolean }): void {
    this.dependencies.set(name, {
      status: options.enabled ? 'down' : 'disabled',
      since: this.now(),
      detail: options.enabled ? 'not checked yet' : undefined,
      everUp: false,
      optional: options.optional ?? false,
      cause: undefined,
      recoveries: [],
    });
  }

  /** Adds a section to the report, computed on demand (it must be cheap). */
  addComponent(name: string, report: () => unknown): void {
    this.components.set(name, report);
  }

  onChange(listener: StatusListener): void {
    this.listeners.push(listener);
  }

  up(name: string): void {
    this.set(name, 'up', undefined);
  }

  down(name: string, detail: string): void {
    this.set(name, 'down', detail);
  }

  isUp(name: string): boolean {
    return this.dependencies.get(name)?.status === 'up';
  }

  private set(name: string, status: 'up' | 'down', detail: string | undefined): void {
    const state = this.dependencies.get(name);
    if (!state) throw new Error(`unknown dependency ${name}`);
    if (state.status === 'disabled') return;
    const changed = state.status !== status;
    const now = this.now();
    let downMs: number | undefined;
    if (changed && status === 'down') state.cause = detail;
    if (changed && status === 'up' && state.everUp) {
      // Only an outage of something that had been up is a recovery; the first connect is not.
      downMs = now - state.since;
      state.recoveries.push({
        down: new Date(state.since).toISOString(),
        up: new Date(now).toISOString(),
        seconds: Math.round(downMs) / 1000,
        cause: state.cause,
      });
      if (state.recoveries.length > RECOVERIES_KEPT) state.recoveries.shift();
    }
    if (changed) state.since = now;
    state.status = status;
    state.detail = detail;
    if (status === 'up') state.everUp = true;
    if (changed) for (const listener of this.listeners) listener(name, status, detail, downMs);
  }

  report(): HealthReport {
    const dependencies: Record<string, DependencyReport> = {};
    let status: OverallStatus = 'ok';
    for (const [name, state] of [...this.dependencies].sort(([a], [b]) => a.localeCompare(b))) {
      const critical = state.status === 'down' && !state.everUp && !state.optional;
      dependencies[name] = {
        status: state.status,
        since: new Date(state.since).toISOString(),
        ...(state.detail !== undefined ? { detail: state.detail } : {}),
        critical,
        ...(state.recoveries.length > 0 ? { recoveries: [...state.recoveries] } : {}),
      };
      if (critical) status = 'unavailable';
      else if (state.status === 'down' && status === 'ok') status = 'degraded';
    }
    const components: Record<string, unknown> = {};
    for (const [name, report] of this.components) components[name] = report();
    return { status, dependencies, components };
  }
}
