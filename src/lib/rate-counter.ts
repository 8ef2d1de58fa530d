/**
 * Events per second over a recent window: one-second buckets for the last minute, so /health
 * and Prometheus can say how busy something is now, not only how busy it has been since start.
 */
const SECONDS = 60;

export class RateCounter {
  private readonly buckets = new Float64Array(SECONDS);
  private readonly stamps = new Float64Array(SECONDS).fill(-1);

  constructor(private readonly now: () => number = Date.now) {}

  record(count = 1): void {
    const second = Math.floor(this.now() / 1000);
    const slot = second % SECONDS;
    if (this.stamps[slot] !== second) {
      this.stamps[slot] = second;
      this.buckets[slot] = 0;
    }
    this.buckets[slot]! += count;
  }

  /** Events per second over the last `seconds` whole seconds (the current one not counted). */
  perSecond(seconds: number): number {
    const window = Math.min(Math.max(1, Math.floor(seconds)), SECONDS - 1);
    const current = Math.floor(this.now() / 1000);
    let total = 0;
    for (let s = current - window; s < current; s++) {
      const slot = ((s % SECONDS) + SECONDS) % SECONDS;
      if (this.stamps[slot] === s) total += this.buckets[slot]!;
    }
    return total / window;
  }
}
