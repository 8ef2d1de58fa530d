/**
 * Exponential backoff with full jitter: a random delay in [base·2^attempt / 2, base·2^attempt],
 * capped. Half the range stays fixed so retries never collapse to zero, the other half spreads a
 * fleet of instances that lost the same dependency at the same moment.
 */
export interface BackoffPolicy {
  readonly baseMs: number;
  readonly maxMs: number;
}

export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}

/** The first failure and every tenth after it are worth a warning; the rest only at debug. */
export function failureLogLevel(attempt: number): 'warn' | 'debug' {
  return attempt === 1 || attempt % 10 === 0 ? 'warn' : 'debug';
}
