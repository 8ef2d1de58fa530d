/**
 * The rows a store wrote in the last few minutes, to write again after a failover.
 *
 * With asynchronous replication (PostgreSQL's default, and Patroni's unless synchronous_mode is
 * on), a standby promoted after its primary died lacks the primary's last commits: writes the
 * service saw acknowledged are gone. Every store of finished windows inserts with ON CONFLICT, so
 * writing the recent ones again on the new primary restores exactly the lost ones and duplicates
 * nothing. Replication lag is seconds; the window is minutes.
 *
 * When the primary moves, replayLater() sets the recent rows aside; the store takes them with
 * takeReplay() when it is about to write a batch, never under a batch in flight (a batch is the
 * head of the store's buffer until it is written, and the replayed rows go before it).
 */
export const REPLAY_WINDOW_MS = 5 * 60_000;

export class RecentWrites<T> {
  private readonly batches: Array<{ readonly at: number; readonly rows: readonly T[] }> = [];
  private rows = 0;
  private pending: T[] = [];

  constructor(
    private readonly options: { readonly windowMs?: number; readonly maxRows: number },
    private readonly now: () => number = Date.now,
  ) {}

  /** The primary moved: what was written within the window waits for takeReplay(). */
  replayLater(): void {
    this.pending.push(...this.take());
  }

  get replayPending(): boolean {
    return this.pending.length > 0;
  }

  /** The rows set aside to be written again, oldest first (and forgotten). */
  takeReplay(): T[] {
    const rows = this.pending;
    this.pending = [];
    return rows;
  }

  /** Rows just acknowledged by the database. */
  written(rows: readonly T[]): void {
    if (rows.length === 0) return;
    this.batches.push({ at: this.now(), rows });
    this.rows += rows.length;
    this.trim();
  }

  /** The rows written within the window, oldest first (and forgotten: they go back to the buffer). */
  take(): T[] {
    this.trim();
    const rows = this.batches.flatMap((batch) => batch.rows);
    this.batches.length = 0;
    this.rows = 0;
    return rows;
  }

  private trim(): void {
    const oldest = this.now() - (this.options.windowMs ?? REPLAY_WINDOW_MS);
    while (this.batches.length > 0 && (this.batches[0]!.at < oldest || this.rows > this.options.maxRows)) {
      this.rows -= this.batches.shift()!.rows.length;
    }
  }
}
