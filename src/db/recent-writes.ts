/**
 * The rows a store wrote in the last few minutes, to write again after a failover.
 *
 * With asynchronous replication (PostgreSQL's default, and Patroni's unless synchronous_mode is
 * on), a standby promoted after its primary died lacks the primary's last commits: writes the
 * service saw acknowledged are gone. Every store of finished windows inserts with ON CONFLICT, so
 * writing the recent ones again on the new primary restores exactly the lost ones and duplicates
 * nothing. Replication lag is seconds; the window is minutes.
 */
export class RecentWrites<T> {
  private readonly batches: Array<{ readonly at: number; readonly rows: readonly T[] }> = [];
  private rows = 0;

  constructor(
    private readonly options: { readonly windowMs: number; readonly maxRows: number },
    private readonly now: () => number = Date.now,
  ) {}

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
    const oldest = this.now() - this.options.windowMs;
    while (this.batches.length > 0 && (this.batches[0]!.at < oldest || this.rows > this.options.maxRows)) {
      this.rows -= this.batches.shift()!.rows.length;
    }
  }
}
