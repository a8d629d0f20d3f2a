/**
 * sticky-session-ts: the programmatic API (`startBalancer`, run in the
 * process that becomes the master) and what apps running in the workers
 * read (`connectionInfo`). The `sticky-session-ts` command (dist/master.js)
 * is a thin wrapper over `startBalancer`.
 */
export { startBalancer, BalancerStartError, type BalancerOptions, type RunningBalancer } from './api.js';
export type { SlotView } from './pool/pool.js';
export type { SlotState } from './pool/slot-state.js';
export { connectionInfo, type ConnectionInfo } from './connection-info.js';
export type { KeySource } from './key/derive.js';
export type { ProxyEndpoint, ProxyTlvs } from './protocol/proxy.js';
