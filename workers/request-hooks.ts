import type http from 'node:http';
import type net from 'node:net';

/**
 * A check the worker runtime runs on every request before the app sees it
 * (inspection rules, per-request stickiness, the sticky cookie, the access log).
 * Returns true when it has answered the request itself: the app never sees it.
 */
export type RequestHook = (req: http.IncomingMessage, res: http.ServerResponse) => boolean;

/**
 * Puts `hooks` in front of the app's 'request' listeners. The app's listeners
 * are moved behind one dispatcher (a prepended listener cannot stop the others
 * from running). Listeners the app adds later still run, after the hooks.
 * No hooks: nothing is touched, zero cost.
 */
export function installRequestHooks(server: net.Server, hooks: readonly RequestHook[]): void {
  if (hooks.length === 0) return;
  const emitter = server as unknown as http.Server;
  const appListeners = emitter.listeners('request') as Array<(req: http.IncomingMessage, res: http.ServerResponse) => void>;
  emitter.removeAllListeners('request');
  const dispatch = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    for (const hook of hooks) if (hook(req, res)) return;
    for (const listener of appListeners) listener.call(emitter, req, res);
  };
  emitter.on('request', dispatch);
}
