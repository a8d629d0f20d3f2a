import type http from 'node:http';
import type net from 'node:net';
import { CONNECTION_INFO, type ConnectionInfo } from '../../src/shared/connection-info.js';
import { resolveConfig, type ResolvedConfig } from '../../src/shared/config/load.js';
import type { ReuseContext } from '../../src/worker/reuse/context.js';

/** A config as the loader resolves it (throws on an invalid one: a test's own mistake). */
export function resolvedConfig(input: unknown): ResolvedConfig {
  const result = resolveConfig(input, {}, null);
  if (!result.ok) throw new Error(result.message);
  return result.config;
}

/** What the reuse code gets from the runtime, for worker `slot` under `config`; a hand-back succeeds at once. */
export function reuseContext(config: ResolvedConfig, slot = 0): ReuseContext {
  return {
    slot,
    rules: config.key,
    stickyCookie: config.stickyCookie,
    maxHeadBytes: 16 * 1024,
    headTimeoutMs: 1000,
    server: () => ({}) as net.Server,
    handBack: (_socket, _bytes, _info, _next, done) => done(null),
  };
}

/** A connection from a trusted proxy, keyed by X-Forwarded-For: one that may carry other clients' requests. */
export const PROXIED: ConnectionInfo = { key: '198.51.100.1', keySource: 'forwarded', worker: 0, proxy: null, peer: '127.0.0.1', peerTrusted: true };

/** A request on a socket that carries `info`, and a response that records what the hook did. */
export function exchange(socket: object, forwardedFor = '198.51.100.1') {
  const headers: Record<string, string> = {};
  const req = { httpVersionMajor: 1, httpVersion: '1.1', method: 'GET', url: '/', headers: { 'x-forwarded-for': forwardedFor }, socket } as unknown as http.IncomingMessage;
  const res = { shouldKeepAlive: true, setHeader: (name: string, value: string) => (headers[name] = value) } as unknown as http.ServerResponse;
  return { req, res, headers };
}

/** A socket stand-in that carries `info` as the runtime attaches it. */
export function socketWith(info: ConnectionInfo | null): object {
  return info === null ? {} : { [CONNECTION_INFO]: info };
}
