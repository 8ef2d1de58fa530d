import { describe, expect, it } from 'vitest';
import { HealthcheckMemory } from './healthcheck-memory.js';

describe('HealthcheckMemory', () => {
  it('answers only what an inspect taught, per source, for ten minutes', () => {
    let now = 1_000; // lru-cache reads a start of 0 as none
    const memory = new HealthcheckMemory(() => now);
    memory.learn('app:1\nnull', false);
    memory.learn('app:2\nnull', true);
    memory.learn(undefined, false);
    memory.learn('app:3\nnull', undefined);
    expect(memory.hasHealthcheck('app:1\nnull')).toBe(false);
    expect(memory.hasHealthcheck('app:2\nnull')).toBe(true);
    expect(memory.hasHealthcheck('app:3\nnull')).toBeUndefined();
    expect(memory.hasHealthcheck(undefined)).toBeUndefined();
    expect(memory.size).toBe(2);

    // A tag may since name an image with a HEALTHCHECK: the answer ends, the next start inspects.
    now += 10 * 60_000 + 1;
    expect(memory.hasHealthcheck('app:1\nnull')).toBeUndefined();
  });
});
