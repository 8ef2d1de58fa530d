import type { Logger } from './logger.js';

/**
 * Calls every listener with the same arguments. A listener that throws is logged as `<what>
 * listener failed` and stops neither the others nor the caller, whose own work is already done.
 */
export function notifyAll<A extends unknown[]>(
  listeners: readonly ((...args: A) => void)[],
  args: A,
  log: Pick<Logger, 'error'>,
  what: string,
): void {
  for (const listener of listeners) {
    try {
      listener(...args);
    } catch (error) {
      log.error({ err: error }, `${what} listener failed`);
    }
  }
}
