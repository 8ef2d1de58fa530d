import { describe, expect, it } from 'vitest';
import { StartTrace, type StartStages } from './start-trace.js';

describe('StartTrace', () => {
  it('carries each start to the first publish that read its sources after the hint, and a failed publish to none', () => {
    const reported: StartStages[] = [];
    const trace = new StartTrace((stages) => reported.push(stages));
    trace.started({ deliveryMs: 40, seenAt: 100, hintedAt: 100 });
    trace.started({ deliveryMs: undefined, seenAt: 105, hintedAt: 130 });

    // The publish read its sources between the two hints: it carries the first only.
    trace.published(120, 150);
    expect(reported).toEqual([{ deliveryMs: 40, hintMs: 0, queueMs: 20, publishMs: 30 }]);
    expect(trace.stats()).toEqual({ traced: 1, pending: 1, dropped: 0 });

    // A publish that failed reports nothing (the publisher calls `published` only when the file is in place).
    trace.published(200, 260);
    expect(reported[1]).toEqual({ deliveryMs: undefined, hintMs: 25, queueMs: 70, publishMs: 60 });
    expect(trace.stats()).toEqual({ traced: 2, pending: 0, dropped: 0 });
  });

  it('keeps a bounded number of starts waiting while publishing fails', () => {
    const trace = new StartTrace(() => undefined);
    for (let i = 0; i < 10_005; i++) trace.started({ deliveryMs: 0, seenAt: i, hintedAt: i });
    expect(trace.stats()).toEqual({ traced: 0, pending: 10_000, dropped: 5 });
    trace.published(20_000, 20_001);
    expect(trace.stats()).toEqual({ traced: 10_000, pending: 0, dropped: 5 });
  });
});
