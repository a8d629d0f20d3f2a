import type { ResolvedConfig } from '../../shared/config/load.js';

/**
 * What a SIGHUP can apply from a re-read config file. Workers are forked with
 * the whole config, so everything a worker reads (workers.app, the worker-side
 * limits, log level, inspect, tls, stickyCookie, accessLog) takes effect in the
 * rolling restart. What the master itself holds — its listening socket, the
 * admin server, the key rules and PROXY policy it decides with, its peek
 * limits, its own inspect rules, the health check it answers, its cluster membership and the form of
 * its own log lines — needs a restart of the master; those paths
 * are returned so that the master can say so.
 */

/** Config paths whose change only a master restart applies. */
export const RESTART_ONLY_PATHS = [
  'listen',
  'admin',
  'key',
  'proxyProtocol',
  'limits.peekBytes',
  'limits.peekTimeoutMs',
  'limits.maxConnections',
  'inspect',
  'health',
  'log.pretty',
  'cluster',
] as const;

function at(config: ResolvedConfig, path: string): unknown {
  let node: unknown = config;
  for (const segment of path.split('.')) node = node === null || typeof node !== 'object' ? undefined : (node as Record<string, unknown>)[segment];
  return node;
}

/** The restart-only paths whose value differs between `running` and `next` (JSON equality). */
export function restartOnlyChanges(running: ResolvedConfig, next: ResolvedConfig): string[] {
  return RESTART_ONLY_PATHS.filter((path) => JSON.stringify(at(running, path)) !== JSON.stringify(at(next, path)));
}
