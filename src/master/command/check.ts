import { fork } from 'node:child_process';
import { join } from 'node:path';

/** How long `--check` waits for the app to load. */
const CHECK_TIMEOUT_MS = 30_000;

/**
 * Loads the app in a child process, as a worker would, and reports whether
 * it loaded: null when it did, else the error with its stack.
 */
export function checkAppLoads(appPath: string): Promise<string | null> {
  return new Promise((resolve) => {
    const child = fork(join(__dirname, '..', '..', 'worker', 'check-app.js'), [appPath], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], serialization: 'json' });
    let answered = false;
    const finish = (result: string | null): void => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      resolve(result);
    };
    const timer = setTimeout(() => finish(`${appPath}: did not finish loading within ${CHECK_TIMEOUT_MS / 1000} s`), CHECK_TIMEOUT_MS);
    child.on('message', (answer: { ok?: boolean; error?: string }) => finish(answer.ok === true ? null : (answer.error ?? 'the app failed to load')));
    child.on('exit', (code, signal) => finish(`${appPath}: the process loading it exited (${signal ?? `code ${code}`}) before it said`));
    child.on('error', (error) => finish(`cannot start a process to load the app: ${error.message}`));
  });
}
