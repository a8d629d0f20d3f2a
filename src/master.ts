import { startResolved } from './api.js';
import { loadConfig } from './config/load.js';

/**
 * The command (dist/master.js): a thin wrapper over the programmatic API
 * (src/api.ts). It loads the config file and the flags, starts the balancer,
 * and maps signals to the API. The only place that calls process.exit.
 */
async function main(): Promise<void> {
  const loaded = loadConfig(process.argv.slice(2));
  if (!loaded.ok) {
    process.stderr.write(`sticky-session-ts: ${loaded.message}\n`);
    process.exit(2);
  }
  const balancer = await startResolved(loaded.config);
  const { log } = balancer;

  // Like gunicorn: TTIN one more worker, TTOU one fewer (the highest slot drains first).
  process.on('SIGTTIN', () => void balancer.scale(balancer.targetCount() + 1));
  process.on('SIGTTOU', () => {
    const count = balancer.targetCount();
    if (count > 1) void balancer.scale(count - 1);
    else log.warn({ workers: count }, 'SIGTTOU ignored: at least one worker stays');
  });
  process.on('SIGHUP', () => {
    // Re-read the file: the new workers get it; a file that does not load keeps the running config.
    const reloaded = loadConfig(process.argv.slice(2));
    if (!reloaded.ok) log.error({ err: reloaded.message }, 'config reload failed; restarting workers with the running config');
    void balancer.reloadResolved(reloaded.ok ? reloaded.config : undefined);
  });
  const stop = (signal: NodeJS.Signals): void => void balancer.closeFor(signal).then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`sticky-session-ts: ${(error as Error).message}\n`);
  process.exit(1);
});
