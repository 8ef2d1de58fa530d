/**
 * Who claims what: per key (a host, or a host and path), the rows that claim it, oldest first. The
 * oldest keeps the key, so a live route never changes owner because a newer row arrived. Updated
 * incrementally: most keys have one row, kept without an array; a list exists only while several
 * rows claim the same key.
 */
export class ClaimIndex<E> {
  private readonly claims = new Map<string, E | E[]>();

  /** `older(a, b)` < 0 when a's claim came first. */
  constructor(private readonly older: (a: E, b: E) => number) {}

  clear(): void {
    this.claims.clear();
  }

  add(key: string, entry: E): void {
    const claim = this.claims.get(key);
    if (claim === undefined) {
      this.claims.set(key, entry);
      return;
    }
    const list = Array.isArray(claim) ? claim : [claim];
    // Insertion in order: lists are short (rows fighting over one key).
    let at = list.length;
    while (at > 0 && this.older(entry, list[at - 1]!) < 0) at--;
    list.splice(at, 0, entry);
    this.claims.set(key, list);
  }

  remove(key: string, entry: E): void {
    const claim = this.claims.get(key);
    if (claim === entry) this.claims.delete(key);
    else if (Array.isArray(claim)) {
      const at = claim.indexOf(entry);
      if (at !== -1) claim.splice(at, 1);
      if (claim.length === 1) this.claims.set(key, claim[0]!);
    }
  }

  /** Every claim of the key, oldest first. */
  all(key: string): readonly E[] {
    const claim = this.claims.get(key);
    return claim === undefined ? [] : Array.isArray(claim) ? claim : [claim];
  }

  /** The oldest claim of the key. */
  holder(key: string): E | undefined {
    const claim = this.claims.get(key);
    return Array.isArray(claim) ? claim[0] : claim;
  }
}
