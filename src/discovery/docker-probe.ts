/**
 * Keeps the `docker` health entry true: pings the daemon on an interval, and with backoff while it
 * is unreachable, so the service starts and stays up without Docker and notices when it returns.
 */
import type Docker from 'dockerode';
import type { Logger } from '../lib/logger.js';
import type { HealthRegistry } from '../health/index.js';
import { PeriodicJob } from '../lib/periodic-job.js';
import { withTimeout } from './docker-client.js';
import { errorMessage } from '../lib/errors.js';

export const DOCKER = 'docker';

export function createDockerProbe(deps: {
  docker: Pick<Docker, 'ping'>;
  health: HealthRegistry;
  log: Logger;
  intervalMs?: number;
}): PeriodicJob {
  deps.health.register(DOCKER, { enabled: true });
  return new PeriodicJob({
    name: 'docker-probe',
    intervalMs: deps.intervalMs ?? 10_000,
    backoff: { baseMs: 500, maxMs: 30_000 },
    log: deps.log,
    run: async () => {
      try {
        await withTimeout(deps.docker.ping(), 5_000, 'docker ping');
        deps.health.up(DOCKER);
      } catch (error) {
        deps.health.down(DOCKER, errorMessage(error));
        throw error;
      }
    },
  });
}
