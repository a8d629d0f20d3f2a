/**
 * sticky-session-ts: the programmatic API (`startBalancer`, run in the
 * process that becomes the master) and what apps running in the workers
 * read (`connectionInfo`). The `sticky-session-ts` command (dist/master.js)
 * is a thin wrapper over `startBalancer`.
 */
export { startBalancer, BalancerStartError, type BalancerOptions, type RunningBalancer } from './master/api.js';
export type { SlotView } from './master/supervisor/pool.js';
export type { SlotState } from './master/supervisor/slot-state.js';
export { connectionInfo, type ConnectionInfo } from './shared/connection-info.js';
export type { KeySource } from './shared/key/derive.js';
export type { ProxyEndpoint, ProxyTlvs } from './shared/protocol/proxy.js';
