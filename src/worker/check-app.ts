import http from 'node:http';
import { loadApp } from './load-app.js';

/**
 * `--check`: loads `workers.app` (its path is the one argument) the way a
 * worker does, says over IPC whether it loaded, and exits; nothing listens.
 */
const reply = (answer: { ok: true } | { ok: false; error: string }): void => {
  process.send?.(answer, undefined, {}, () => process.exit(0));
};
const appPath = process.argv[2];
if (appPath === undefined) reply({ ok: false, error: 'no app path' });
else {
  loadApp(appPath, (listener) => http.createServer(listener)).then(
    () => reply({ ok: true }),
    (error: unknown) => reply({ ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
  );
}
