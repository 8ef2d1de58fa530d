/**
 * Bounds and equality for JSON values from outside (a jsonb column, a Redis message), computed
 * without recursion: a document nested 9,000 levels deep must be refused, not overflow the stack
 * of whatever walks it (JSON.stringify, a schema validator, a deep comparison).
 */
export interface JsonLimits {
  /** Nesting levels of arrays and objects; a scalar is depth 0. */
  readonly maxDepth: number;
  /** Values (scalars, arrays, objects) in all. */
  readonly maxNodes: number;
  /** Object keys refused anywhere (`__proto__`: schema validators drop it silently). */
  readonly forbiddenKeys?: readonly string[];
}

/** Why the value is outside the limits, or undefined when it is within them. */
export function exceedsJsonLimits(value: unknown, limits: JsonLimits): string | undefined {
  const stack: Array<[unknown, number]> = [[value, 0]];
  let nodes = 0;
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!;
    if (++nodes > limits.maxNodes) return `has more than ${limits.maxNodes} values`;
    if (current === null || typeof current !== 'object') continue;
    if (depth >= limits.maxDepth) return `is nested deeper than ${limits.maxDepth} levels`;
    if (!Array.isArray(current) && limits.forbiddenKeys !== undefined) {
      const forbidden = limits.forbiddenKeys.find((key) => Object.hasOwn(current, key));
      if (forbidden !== undefined) return `has the key "${forbidden}", which is not allowed`;
    }
    const children = Array.isArray(current) ? current : Object.values(current);
    for (const child of children) stack.push([child, depth + 1]);
  }
  return undefined;
}

/**
 * Deep equality of two JSON values (objects compared by own keys, in any order), iterative. Values
 * past `limits` compare unequal, so that the caller treats them as changed and validates them again.
 */
export function jsonEqual(a: unknown, b: unknown, limits: JsonLimits): boolean {
  const stack: Array<[unknown, unknown, number]> = [[a, b, 0]];
  let nodes = 0;
  while (stack.length > 0) {
    const [x, y, depth] = stack.pop()!;
    if (x === y) continue;
    if (++nodes > limits.maxNodes || depth >= limits.maxDepth) return false;
    if (x === null || y === null || typeof x !== 'object' || typeof y !== 'object') return false;
    if (Array.isArray(x) !== Array.isArray(y)) return false;
    if (Array.isArray(x)) {
      const ys = y as unknown[];
      if (x.length !== ys.length) return false;
      for (let i = 0; i < x.length; i++) stack.push([x[i], ys[i], depth + 1]);
      continue;
    }
    const xo = x as Record<string, unknown>;
    const yo = y as Record<string, unknown>;
    const keys = Object.keys(xo);
    if (keys.length !== Object.keys(yo).length) return false;
    for (const key of keys) {
      if (!Object.hasOwn(yo, key)) return false;
      stack.push([xo[key], yo[key], depth + 1]);
    }
  }
  return true;
}
