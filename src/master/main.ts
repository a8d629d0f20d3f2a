import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BalancerStartError, startResolved } from './api.js';
import { checkAppLoads } from './command/check.js';
import { announceReady, inheritedListeners, startSuccessor } from './command/upgrade.js';
import { usage } from './command/usage.js';
import { PACKAGE_DIR, displayPath, loadConfig, parseCli } from '../shared/config/load.js';

/**
 * The command (dist/master.js): a thin wrapper over the programmatic API
 * (src/master/api.ts). It reads the flags and the config file, starts the balancer,
 * and maps signals to the API. The only place that calls process.exit.
 */

/** Exit codes: 1 the app or a port failed at start, 2 bad config or flags. */
const EXIT_START_FAILED = 1;
const EXIT_BAD_CONFIG = 2;

function fail(code: number, lines: readonly string[]): never {
  process.stderr.write(lines.map((line) => `sticky-session-ts: ${line}\n`).join(''));
  process.exit(code);
}

async function main(argv: readonly string[]): Promise<void> {
  const cli = parseCli(argv);
  if (!cli.ok) fail(EXIT_BAD_CONFIG, [cli.message]);
  const version = (JSON.parse(readFileSync(join(PACKAGE_DIR, 'package.json'), 'utf8')) as { version: string }).version;
  if (cli.action === 'help') {
    process.stdout.write(usage(version));
    return;
  }
  if (cli.action === 'version') {
    process.stdout.write(`${version}\n`);
    return;
  }
  const loaded = loadConfig(argv);
  if (!loaded.ok) fail(EXIT_BAD_CONFIG, loaded.errors);
  const config = loaded.config;
  if (cli.action === 'check') {
    const failure = await checkAppLoads(config.appPath);
    if (failure !== null) fail(EXIT_BAD_CONFIG, [`workers.app ${config.appPath} does not load:\n${failure}`]);
    const tls = config.tls ? ', TLS files read' : '';
    process.stdout.write(`${config.configPath === null ? 'built-in defaults' : displayPath(config.configPath)}: ok (${config.workerCount} workers, app ${displayPath(config.appPath)} loads${tls})\n`);
    return;
  }

  // A signal while starting ends the process through exit handlers (which remove what the start made), not by the default action.
  const stopWhileStarting = (signal: NodeJS.Signals): void => process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
  process.once('SIGTERM', stopWhileStarting);
  process.once('SIGINT', stopWhileStarting);
  let balancer;
  try {
    balancer = await startResolved(config, inheritedListeners());
  } catch (error) {
    // One message (an app's stack follows its first line unprefixed).
    if (error instanceof BalancerStartError) fail(error.code === 'ERR_CONFIG' ? EXIT_BAD_CONFIG : EXIT_START_FAILED, [error.message]);
    throw error;
  }
  process.off('SIGTERM', stopWhileStarting);
  process.off('SIGINT', stopWhileStarting);
  announceReady();
  const { log } = balancer;
  const running = balancer;

  // Like gunicorn: TTIN one more worker, TTOU one fewer (the highest slot drains first).
  process.on('SIGTTIN', () => void running.scale(running.targetCount() + 1));
  process.on('SIGTTOU', () => {
    const count = running.targetCount();
    if (count > 1) void running.scale(count - 1);
    else log.warn({ workers: count }, 'SIGTTOU ignored: at least one worker stays');
  });
  process.on('SIGHUP', () => {
    // Re-read the file: the new workers get it; a file that does not load keeps the running config.
    const reloaded = loadConfig(argv);
    if (!reloaded.ok) log.error({ err: reloaded.message }, 'config reload failed; restarting workers with the running config');
    void running.reloadResolved(reloaded.ok ? reloaded.config : undefined);
  });
  // Like nginx: USR2 starts a new master (new code, same command line) on the same sockets.
  let upgrading = false;
  process.on('SIGUSR2', () => {
    if (upgrading) return;
    upgrading = true;
    void startSuccessor(running.listeners(), log).then((pid) => {
      if (pid === null) {
        upgrading = false;
        return;
      }
      log.info({ successor: pid }, 'upgrade: the new master is ready; this one drains and exits');
      void running.closeFor('upgrade').then(() => process.exit(0));
    });
  });
  // SIGTERM (systemd, Kubernetes) first lets the load balancer see the health check fail; Ctrl-C stops at once.
  process.on('SIGTERM', () => void running.closeFor('SIGTERM', config.health?.graceMs ?? 0).then(() => process.exit(0)));
  process.on('SIGINT', () => void running.closeFor('SIGINT').then(() => process.exit(0)));
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`sticky-session-ts: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(EXIT_START_FAILED);
});
