/**
 * sticky-session-ts, the package's exports for apps running in the workers.
 * The balancer itself is the `sticky-session-ts` command (dist/master.js).
 */
export { connectionInfo, type ConnectionInfo } from './connection-info.js';
export type { KeySource } from './key/derive.js';
export type { ProxyEndpoint, ProxyTlvs } from './protocol/proxy.js';
