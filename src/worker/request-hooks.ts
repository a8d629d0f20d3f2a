import type http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';

/**
 * A check the worker runtime runs on every request before the app sees it
 * (inspection rules, per-request stickiness, the sticky cookie, the access log).
 * Returns true when it has taken the request: the app never sees it, unless
 * the hook later hands it on with `serveHere` (the hooks after it, then the app).
 */
export type RequestHook = (req: http.IncomingMessage, res: http.ServerResponse, serveHere: (req: http.IncomingMessage, res: http.ServerResponse) => void) => boolean;

/**
 * A check the runtime runs on every Upgrade (and CONNECT) request before the
 * app's 'upgrade' listeners. Returns true when it has taken the socket.
 */
export type UpgradeHook = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => boolean;

type RequestListener = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/**
 * Puts `hooks` in front of the app's 'request' listeners. The app's listeners
 * are moved behind one dispatcher (a prepended listener cannot stop the others
 * from running). Listeners the app adds later still run, after the hooks.
 * No hooks: nothing is touched, zero cost.
 */
export function installRequestHooks(server: net.Server, hooks: readonly RequestHook[]): void {
  if (hooks.length === 0) return;
  const emitter = server as unknown as http.Server;
  const appListeners = emitter.listeners('request') as RequestListener[];
  emitter.removeAllListeners('request');
  // serveHere for the hook at index i: the hooks after it, then the app.
  const continuations: RequestListener[] = [];
  const from = (start: number): RequestListener => (req, res) => {
    for (let i = start; i < hooks.length; i++) if ((hooks[i] as RequestHook)(req, res, continuations[i] as RequestListener)) return;
    for (const listener of appListeners) listener.call(emitter, req, res);
  };
  for (let i = 0; i < hooks.length; i++) continuations.push(from(i + 1));
  emitter.on('request', from(0));
}

/**
 * Puts `hooks` in front of the app's 'upgrade' listeners, as
 * {@link installRequestHooks} does for requests. Only when the app listens for
 * upgrades: Node treats an Upgrade request as a plain request when nobody
 * does, and a hook must not change that.
 */
export function installUpgradeHooks(server: net.Server, hooks: readonly UpgradeHook[]): void {
  const emitter = server as unknown as http.Server;
  if (hooks.length === 0 || emitter.listenerCount('upgrade') === 0) return;
  const appListeners = emitter.listeners('upgrade') as Array<(req: http.IncomingMessage, socket: Duplex, head: Buffer) => void>;
  emitter.removeAllListeners('upgrade');
  emitter.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    for (const hook of hooks) if (hook(req, socket, head)) return;
    for (const listener of appListeners) listener.call(emitter, req, socket, head);
  });
}
