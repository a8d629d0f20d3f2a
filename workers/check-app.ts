import http from 'node:http';
import { loadApp } from './load-app.js';

/**
 * `--check`: loads `workers.app` the way a worker does (the path arrives over
 * IPC), says whether it loaded, and exits; nothing listens.
 */
process.once('message', (message: { readonly appPath?: unknown }) => {
  const reply = (answer: { ok: true } | { ok: false; error: string }): void => {
    process.send?.(answer, undefined, {}, () => process.exit(0));
  };
  if (typeof message?.appPath !== 'string') return reply({ ok: false, error: 'no app path' });
  loadApp(message.appPath, (listener) => http.createServer(listener)).then(
    () => reply({ ok: true }),
    (error: unknown) => reply({ ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
  );
});
