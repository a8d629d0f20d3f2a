/**
 * key.reuse: what happens to later requests on a connection whose
 * first request decided its worker. An HTTP-mode balancer (AWS ALB, nginx with
 * upstream keep-alive) sends requests of many clients down one pooled
 * connection, so a request's key can belong to another worker than the one
 * holding the connection.
 */
import type { ConnectionInfo } from '../connection-info.js';
import type { KeySource } from './derive.js';

/**
 * - `handback`: the worker runtime frames each request itself; one whose key
 *   belongs to another worker makes it hand the connection (and the bytes of
 *   that request) back to the master, which routes it like a new connection.
 * - `forward`: the connection stays on Node's own path (no framing by the
 *   runtime); such a request is relayed to its worker over a worker-to-worker
 *   link (src/worker/reuse/forward.ts, src/worker/link/) and its response written back
 *   in its place, the client's connection staying where it is (an Upgrade or
 *   CONNECT is handed back instead, so its tunnel has no process in between).
 * - `close`: responses on such connections carry `Connection: close`, so the
 *   proxy opens a fresh connection (decided by the master) per request.
 * - `off`: the first request decides for the whole connection.
 */
export type ReuseMode = 'handback' | 'forward' | 'close' | 'off';

/**
 * The mode when `key.reuse` is not set. `forward`: it is correct (like
 * `handback` and `close`) and the fastest of the three where it matters, on
 * connections that interleave clients (bench/README.md has the numbers). It costs
 * nothing on connections that cannot carry other clients' requests (see
 * {@link mayCarryOtherClients}), and a header lookup and a hash per request on
 * those that can.
 */
export const DEFAULT_REUSE_MODE: ReuseMode = 'forward';

/** The effective mode of a `key` config section. */
export function reuseMode(key: { readonly reuse?: ReuseMode | undefined }): ReuseMode {
  return key.reuse ?? DEFAULT_REUSE_MODE;
}

/**
 * Whether later requests on a connection can carry another client's key, so
 * that key.reuse must look at each of them:
 * - only from a trusted peer (a proxy in `proxyProtocol.trustedFrom`): an
 *   untrusted peer is one client, whose forwarded headers mean nothing, and
 *   whose cookie can only name one worker once the sticky cookie is set;
 * - not when the connection was keyed by its PROXY header: PROXY describes one
 *   client connection (an L4 balancer, or an L7 one that does not pool
 *   connections carrying PROXY headers);
 * - only when some per-request source can differ: `cookie` or `forwarded` in
 *   `key.order`, or the sticky cookie.
 */
export function mayCarryOtherClients(info: ConnectionInfo, order: readonly KeySource[], stickyCookie: boolean): boolean {
  if (info.peerTrusted !== true || info.keySource === 'proxy') return false;
  return stickyCookie || order.includes('forwarded') || order.includes('cookie');
}
