/**
 * opossum circuit breakers with exponential backoff: each time a trial call (half-open) fails,
 * the breaker stays open twice as long, up to a cap; closing resets it. opossum reads
 * options.resetTimeout when it schedules the half-open timer, so adjusting it on 'open' sets the
 * wait before the next trial.
 */
import CircuitBreaker from 'opossum';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  readonly name: string;
  /** Per call; it does not cancel the call (set statement/query timeouts too). */
  readonly timeoutMs: number;
  readonly resetMs: number;
  readonly maxResetMs: number;
  /** Rolling window over which the error percentage is computed (at least twice timeoutMs). */
  readonly windowMs: number;
  readonly errorThresholdPercentage: number;
  /** Calls in the window before the breaker may open. */
  readonly volumeThreshold: number;
  /** Errors that are the caller's fault, not the dependency's: they do not count. */
  readonly isCallerError?: (error: unknown) => boolean;
}

export interface Breaker<TArgs extends unknown[], TResult> {
  fire(...args: TArgs): Promise<TResult>;
  state(): BreakerState;
  stats(): {
    state: BreakerState;
    opened: number;
    closed: number;
    rejected: number;
    failures: number;
    timeouts: number;
    successes: number;
  };
  onStateChange(listener: (state: BreakerState) => void): void;
  shutdown(): void;
}

export function createBreaker<TArgs extends unknown[], TResult>(
  action: (...args: TArgs) => Promise<TResult>,
  options: BreakerOptions,
): Breaker<TArgs, TResult> {
  const breaker = new CircuitBreaker<TArgs, TResult>(action, {
    name: options.name,
    timeout: options.timeoutMs,
    resetTimeout: options.resetMs,
    // A call's failure is counted when it ends, against the calls fired within the window: a
    // window shorter than a slow call has rolled past its fire by then, finds no volume, and the
    // breaker never opens however slow the dependency gets. So it spans two timeouts at least.
    rollingCountTimeout: Math.max(options.windowMs, 2 * options.timeoutMs),
    rollingCountBuckets: 10,
    errorThresholdPercentage: options.errorThresholdPercentage,
    volumeThreshold: options.volumeThreshold,
    ...(options.isCallerError ? { errorFilter: options.isCallerError } : {}),
  });
  // Not in the type definitions, but a documented property of opossum's CircuitBreaker.
  const live = (breaker as unknown as { options: { resetTimeout: number } }).options;
  const counts = { opened: 0, closed: 0 };
  const listeners: Array<(state: BreakerState) => void> = [];
  const state = (): BreakerState => (breaker.opened ? 'open' : breaker.halfOpen ? 'half-open' : 'closed');
  const emit = () => listeners.forEach((listener) => listener(state()));
  breaker.on('open', () => {
    counts.opened += 1;
    live.resetTimeout = Math.min(live.resetTimeout * 2, options.maxResetMs);
    emit();
  });
  breaker.on('halfOpen', emit);
  breaker.on('close', () => {
    counts.closed += 1;
    live.resetTimeout = options.resetMs;
    emit();
  });
  return {
    fire: (...args) => breaker.fire(...args),
    state,
    stats: () => {
      const s = breaker.stats;
      return {
        state: state(),
        opened: counts.opened,
        closed: counts.closed,
        rejected: s.rejects,
        failures: s.failures,
        timeouts: s.timeouts,
        successes: s.successes,
      };
    },
    onStateChange: (listener) => listeners.push(listener),
    shutdown: () => breaker.shutdown(),
  };
}
