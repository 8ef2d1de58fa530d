/** Starts the service: load the config, build the app, listen, stop cleanly on SIGTERM, SIGINT or SIGHUP. */
import { ConfigError, loadConfig, type Config } from './config.js';
import { buildApp } from './app.js';
import { errorMessage } from './lib/errors.js';

function readConfig(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      // The logger is configured from this config, so it cannot report it: stderr, then exit.
      process.stderr.write(`swarm-edge: ${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
}

const config = readConfig();
const app = await buildApp(config).catch((error: unknown) => {
  // No logger yet either: say what failed, plainly, rather than an opaque crash.
  process.stderr.write(`swarm-edge: could not start: ${errorMessage(error)}\n`);
  process.exit(1);
});

let stopping = false;
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (stopping) {
    app.log.warn({ signal }, 'second signal: exiting at once');
    process.exit(1);
  }
  stopping = true;
  app.log.info({ signal }, 'shutting down');
  const force = setTimeout(() => {
    app.log.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown took too long: exiting');
    process.exit(1);
  }, config.shutdownTimeoutMs);
  force.unref();
  try {
    await app.close();
    process.exit(0);
  } catch (error) {
    app.log.error({ err: error }, 'shutdown failed');
    process.exit(1);
  }
}
process.on('SIGTERM', (signal) => void shutdown(signal));
process.on('SIGINT', (signal) => void shutdown(signal));
// A closed terminal or a supervisor's reload sends SIGHUP, which would otherwise kill the process
// at once: no flush of finished metrics windows, no release of the Redis lock.
process.on('SIGHUP', (signal) => void shutdown(signal));

try {
  await app.listen({ host: config.host, port: config.port });
} catch (error) {
  app.log.fatal({ err: error }, 'could not start');
  await app.close().catch(() => undefined);
  process.exit(1);
}
