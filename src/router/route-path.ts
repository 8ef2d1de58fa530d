/** Paths and durations as routing rows may give them: what reaches a rule or a health check. */

/** Path characters allowed in rules and health checks (no quotes, spaces or backticks). */
export const PATH_PATTERN = /^(\/([A-Za-z0-9._~:@-]|%[0-9A-Fa-f]{2})*)+$/;
/** Traefik durations as accepted here: 500ms, 1s, 5m, 1h. */
export const DURATION_PATTERN = /^[0-9]{1,6}(ms|s|m|h)$/;

/** A path prefix ('' for none), or why it is refused. */
export function parsePath(value: unknown): { path: string } | { reason: string } {
  if (value === null || value === undefined || value === '' || value === '/') return { path: '' };
  if (typeof value !== 'string') return { reason: 'is not a string' };
  if (value.length > 256) return { reason: 'is longer than 256 characters' };
  if (!PATH_PATTERN.test(value))
    return { reason: 'must start with / and use only letters, digits, - . _ ~ : @ and %XX escapes' };
  if (value.includes('//')) return { reason: 'contains an empty segment' };
  if (value.split('/').some((segment) => segment === '.' || segment === '..'))
    return { reason: 'contains a . or .. segment' };
  return { path: value };
}
