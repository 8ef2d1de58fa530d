/**
 * Whether the metrics role is healthy, as one pure function of its parts' figures: collection
 * recent (within three intervals), the metrics database's breaker closed, the Docker stats
 * breaker (when the source has one) closed.
 */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface MetricsHealthInput {
  readonly now: number;
  readonly intervalMs: number;
  readonly lastCollectionAt: number | undefined;
  readonly lastCollectionError: string | undefined;
  readonly storageBreaker: BreakerState;
  readonly statsBreaker: BreakerState | undefined;
}

/** The problems, in words; none means healthy. */
export function metricsProblems(input: MetricsHealthInput): string[] {
  const problems: string[] = [];
  const { lastCollectionAt, now } = input;
  if (lastCollectionAt === undefined || now - lastCollectionAt > 3 * input.intervalMs) {
    const since = lastCollectionAt === undefined ? 'ever' : `${Math.round((now - lastCollectionAt) / 1000)} s`;
    problems.push(`no collection for ${since}${input.lastCollectionError ? ` (${input.lastCollectionError})` : ''}`);
  }
  if (input.storageBreaker !== 'closed') problems.push(`metrics database breaker ${input.storageBreaker}`);
  if ((input.statsBreaker ?? 'closed') !== 'closed') problems.push('docker stats breaker open');
  return problems;
}
