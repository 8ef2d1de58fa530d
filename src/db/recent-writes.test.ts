import { describe, expect, it } from 'vitest';
import { RecentWrites } from './recent-writes.js';

describe('RecentWrites', () => {
  it('hands back what was written within the window, oldest first, once', () => {
    let now = 0;
    const recent = new RecentWrites<number>({ windowMs: 60_000, maxRows: 100 }, () => now);
    recent.written([1, 2]);
    now = 30_000;
    recent.written([3]);
    now = 70_000;
    recent.written([4]);
    expect(recent.take()).toEqual([3, 4]);
    expect(recent.take()).toEqual([]);
  });

  it('keeps at most maxRows, dropping the oldest batches', () => {
    const recent = new RecentWrites<number>({ windowMs: 60_000, maxRows: 3 }, () => 0);
    recent.written([1, 2]);
    recent.written([3, 4]);
    recent.written([5]);
    expect(recent.take()).toEqual([3, 4, 5]);
  });

  it('sets the recent rows aside when the primary moves, until the store takes them', () => {
    const recent = new RecentWrites<number>({ maxRows: 10 }, () => 0);
    recent.written([1, 2]);
    expect(recent.replayPending).toBe(false);
    recent.replayLater();
    recent.written([3]);
    expect(recent.replayPending).toBe(true);
    expect(recent.takeReplay()).toEqual([1, 2]);
    expect(recent.replayPending).toBe(false);
    expect(recent.take()).toEqual([3]);
  });
});
