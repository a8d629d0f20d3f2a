import http from 'node:http';
import net from 'node:net';
import { pathToFileURL } from 'node:url';

/** What a `workers.app` module can export. */
export type AppExport = net.Server | http.RequestListener | (() => net.Server | http.RequestListener | Promise<net.Server | http.RequestListener>);

/**
 * Loads `workers.app` and turns its default export into a server that is not
 * listening. Accepted exports:
 * - an http/https/http2/net/tls server (not listening);
 * - a function of no parameters (a factory, sync or async) returning one of these;
 * - any other function: a request listener `(req, res)` such as an Express app
 *   (arity 3) or Koa's `app.callback()` (arity 2), served by a new http server.
 * The factory rule is arity 0 because a request listener always takes `req`.
 */
export async function loadApp(appPath: string, makeServer: (listener: http.RequestListener) => net.Server): Promise<net.Server> {
  const module = (await import(pathToFileURL(appPath).href)) as { default?: unknown };
  let exported: unknown = module.default ?? module;
  // A CommonJS module compiled from `export default` nests it once more.
  if (exported !== null && typeof exported === 'object' && 'default' in exported && !(exported instanceof net.Server)) {
    exported = (exported as { default: unknown }).default;
  }
  if (typeof exported === 'function' && !(exported instanceof net.Server) && exported.length === 0) {
    exported = await (exported as () => unknown)();
  }
  if (exported instanceof net.Server) {
    if (exported.listening) throw new Error(`${appPath}: the exported server is already listening; export it without calling listen()`);
    return exported;
  }
  if (typeof exported === 'function') return makeServer(exported as http.RequestListener);
  throw new Error(`${appPath}: default export must be a server, a request listener or a factory of either`);
}
