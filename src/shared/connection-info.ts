import type { ConnectionKeySource } from './key/sources.js';
import type { ProxyEndpoint, ProxyTlvs } from './protocol/proxy.js';
import { tlsParentOf } from '../node/socket.js';

/** What the master learned about a connection, handed to the worker with the socket. */
export interface ConnectionInfo {
  /** The client key the connection was routed by. */
  readonly key: string;
  /** Where the key came from. */
  readonly keySource: ConnectionKeySource;
  /** The worker slot serving it. */
  readonly worker: number;
  /** The honoured PROXY header, or null. */
  readonly proxy: {
    readonly source: ProxyEndpoint | null;
    readonly destination: ProxyEndpoint | null;
    readonly tlvs: ProxyTlvs;
  } | null;
  /**
   * The TCP peer's canonical address and whether it is in
   * `proxyProtocol.trustedFrom`: the worker needs them to derive each later
   * request's key exactly as the master would (key.reuse).
   */
  readonly peer?: string;
  readonly peerTrusted?: boolean;
  /** The real client address limits.perClient.maxConnections counts this connection under (set only then). */
  readonly limitClient?: string;
  /**
   * The first request's real client address as the master found it (set only
   * with limits.perClient.requestsPerSecond, not for exempt clients). The
   * worker's request check clears it once used when later requests may be
   * other clients' (a trusted proxy's connection): a value, not a new object.
   */
  firstClient?: string | undefined;
  /** With many nodes: the id of the node serving it (`cluster.self`). */
  readonly node?: string;
  /** With many nodes: the node it entered through, when that node forwarded it here. */
  readonly via?: string;
  /**
   * The client's endpoints when they are neither the socket's nor a PROXY
   * header's: a connection another node forwarded that came to that node
   * without a PROXY header (the app sees that node's TCP peer, as if direct).
   */
  readonly addresses?: {
    readonly source: ProxyEndpoint;
    readonly destination: ProxyEndpoint;
  };
  /** With many nodes: another node owns this connection's key, and the worker pumps it there. */
  readonly forward?: PeerForward;
}

/** What the master decided for a connection another node owns; the app never sees such a connection. */
export interface PeerForward {
  /** The owner first, then the key's next nodes, this node excluded. */
  readonly peers: ReadonlyArray<{ readonly id: string; readonly host: string; readonly port: number }>;
  /** The PROXY v2 header to write first (base64). */
  readonly header: string;
  /** `process.hrtime.bigint()` at accept, in ns: the monotonic clock every process on the machine shares. */
  readonly acceptedAt: number;
  /** Peers the master holds as unreachable and is trying again: a connect to one is reported. */
  readonly retrying: readonly string[];
}

/**
 * Where the worker runtime stores a connection's info. A registry symbol, so
 * that an app requiring another copy of this package still finds it.
 */
export const CONNECTION_INFO = Symbol.for('sticky-session-ts.connectionInfo');

/**
 * The balancer's view of a connection: `{ key, keySource, worker, proxy }`.
 * Works on the socket the worker runtime received and on sockets wrapping it
 * (`req.socket` of http, https and http2). Returns null for a socket that did
 * not come through the balancer.
 */
export function connectionInfo(socket: object | null | undefined): ConnectionInfo | null {
  let current: unknown = socket;
  // A TLS socket wraps the raw one, an HTTP/2 stream's socket is a proxy
  // of the session socket; follow a few links at most.
  for (let depth = 0; depth < 4 && current !== null && typeof current === 'object'; depth++) {
    const info = (current as Record<symbol, unknown>)[CONNECTION_INFO];
    if (info !== undefined) return info as ConnectionInfo;
    current = tlsParentOf(current);
  }
  return null;
}
