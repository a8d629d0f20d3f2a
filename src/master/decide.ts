import type { Logger } from 'pino';
import type { ResolvedConfig } from '../shared/config/load.js';
import type { ConnectionInfo } from '../shared/connection-info.js';
import { realClientAddress, truncateForLog } from '../shared/inspect/client.js';
import { refusalBytes } from '../shared/inspect/response.js';
import { compileInspector, type Inspector, type Refusal } from '../shared/inspect/rules.js';
import { canonicalIp } from '../shared/ip/address.js';
import { deriveKey, type ClientKey } from '../shared/key/derive.js';
import { nowSeconds, readStickyCookie, type StickyVerdict } from '../shared/key/sticky-cookie.js';
import { tooManyRequestsBytes } from '../shared/limits/too-many.js';
import type { RequestHead } from '../shared/protocol/http1.js';
import type { ProxyEndpoint, ProxyHeader } from '../shared/protocol/proxy.js';
import { hashKey } from '../shared/ring/farmhash.js';
import type { MasterMetrics } from './admin/metrics.js';
import type { ClientConn } from './client-conn.js';
import type { ClientLimits } from './client-limits.js';
import { healthResponse, isHealthCheck } from './health.js';
import type { Refuser } from './refuse.js';
import type { Handoff } from './route.js';
import type { Cluster } from './cluster/cluster.js';
import { readPeerHeader, type ForwardedFacts } from './cluster/peer-header.js';

/** A connection whose peek is over: what the master read and learned of it. */
export interface Peeked {
  readonly conn: ClientConn;
  /** The TCP peer, canonical. */
  readonly peer: string;
  readonly peerTrusted: boolean;
  /** The honoured PROXY header, if one came. */
  readonly proxy: ProxyHeader | null;
  /** It came in on the peer port: another node forwarded it. */
  readonly fromPeer: boolean;
  readonly acceptedAt: bigint;
  /** Every application byte read (after an honoured PROXY header). */
  readonly bytes: Buffer;
}

/** What the decision needs from the master around it. */
export interface DecideDeps {
  readonly config: ResolvedConfig;
  /** Slots, the ready ones, and how many are ready (a sticky cookie's slot, the health check). */
  readonly pool: { readonly slotCount: number; readonly readyMask: Uint8Array; readyCount(): number };
  /** Where a connection that may go goes. */
  take(handoff: Handoff): void;
  readonly refuser: Refuser;
  readonly metrics: MasterMetrics;
  readonly log: Logger;
  /** limits.perClient, or null: no section, no cost. */
  readonly clientLimits: ClientLimits | null;
  /** Many nodes, or null: one node, no cost. */
  readonly cluster: Cluster | null;
  /** The balancer is stopping: the health check fails. */
  stopping(): boolean;
}

/** The connection as the node it entered through saw it: what the key, the limits and the app go by. */
interface Origin {
  readonly proxySource: string | null;
  readonly peer: string;
  readonly peerTrusted: boolean;
  readonly proxy: ConnectionInfo['proxy'];
  /** Set on a forwarded connection that came to its entry node without a PROXY header. */
  readonly addresses?: ConnectionInfo['addresses'];
  /** The entry node, on a forwarded connection. */
  readonly via?: string;
}

/**
 * What becomes of a peeked connection, in this order: the load balancer's
 * health check is answered, inspection may refuse the first request, the
 * key is derived (or read from the forwarding node's header), another node's
 * key goes to that node, the per-client limits may refuse it, and a sticky
 * cookie may pin it; then the router hands it to a worker. Never throws,
 * whatever the bytes.
 */
export class Decider {
  private readonly inspector: Inspector | null;

  constructor(private readonly deps: DecideDeps) {
    this.inspector = deps.config.inspect ? compileInspector(deps.config.inspect) : null;
  }

  decide(peeked: Peeked, head: RequestHead | null): void {
    const { config, refuser } = this.deps;
    // The load balancer's health check, before inspection (its Host is often an address) and before any limit.
    if (head !== null && config.health !== undefined && isHealthCheck(head.method, head.target, config.health.path)) {
      refuser.answerAndClose(peeked.conn, healthResponse(this.deps.pool.readyCount(), this.deps.stopping(), head.method === 'HEAD'));
      return;
    }
    // Bytes that are not an HTTP/1.x head (TLS, HTTP/2, binary, a head over
    // peekBytes) are not inspected here; the worker runtime checks what it parses.
    if (head !== null && this.inspector !== null) {
      const refusal = this.inspector(head.method, head.target, head.host);
      if (refusal !== null) {
        this.refuseRequest(peeked, head, refusal);
        return;
      }
    }
    // Same synchronous callback as the decision: stop reading before anything else.
    peeked.conn.stopReading();
    const proxySource = peeked.proxy?.command === 'PROXY' ? (peeked.proxy.source?.address ?? null) : null;
    const proxy: ConnectionInfo['proxy'] = peeked.proxy && { source: canonicalEndpoint(peeked.proxy.source), destination: canonicalEndpoint(peeked.proxy.destination), tlvs: peeked.proxy.tlvs };
    // From a peer: the key and the client as the entry node saw them (never derived twice).
    const forwarded = peeked.fromPeer && proxy !== null ? readPeerHeader(proxy) : null;
    if (forwarded !== null) {
      const origin: Origin = { proxySource: forwarded.proxy?.source?.address ?? null, peer: forwarded.peer, peerTrusted: forwarded.peerTrusted, proxy: forwarded.proxy, addresses: forwarded.addresses, via: forwarded.via };
      this.handOff(peeked, head, { key: forwarded.key, source: forwarded.keySource }, origin);
      return;
    }
    let clientKey: ClientKey;
    try {
      clientKey = deriveKey({ head, proxySource, peerAddress: peeked.peer, peerTrusted: peeked.peerTrusted }, config.key);
    } catch (error) {
      // deriveKey is total; this is a last line of defence for the master's event loop.
      this.deps.log.error({ client: peeked.peer, err: (error as Error).message }, 'key derivation failed');
      clientKey = { key: peeked.peer, source: 'remote' };
    }
    const origin: Origin = { proxySource, peer: peeked.peer, peerTrusted: peeked.peerTrusted, proxy };
    if (!peeked.fromPeer && this.forwardToOwner(peeked, clientKey, origin)) return;
    this.handOff(peeked, head, clientKey, origin);
  }

  /** With many nodes, a key another node owns: the key's worker here pumps it there. False when it stays here. */
  private forwardToOwner(peeked: Peeked, clientKey: ClientKey, origin: Origin): boolean {
    const cluster = this.deps.cluster;
    if (cluster === null) return false;
    const keyHash = hashKey(clientKey.key);
    const owner = cluster.ownerOf(keyHash);
    if (owner === cluster.self) return false;
    // Limits are the owner's: every connection of a key meets there, whichever node it entered.
    const facts: ForwardedFacts = { key: clientKey.key, keySource: clientKey.source, peer: origin.peer, peerTrusted: origin.peerTrusted, proxy: origin.proxy, via: cluster.self };
    const forward = cluster.plan(facts, peeked.conn.endpoints(), keyHash, owner, peeked.acceptedAt);
    if (forward === null) return false;
    // The key's worker here pumps it (and serves it when no node answers): the master only hands off.
    const info: ConnectionInfo = { key: clientKey.key, keySource: clientKey.source, worker: -1, proxy: origin.proxy, peer: origin.peer, peerTrusted: origin.peerTrusted, node: cluster.self, forward };
    this.deps.take({ conn: peeked.conn, bytes: peeked.bytes, info, keyHash, acceptedAt: peeked.acceptedAt, peer: origin.proxySource ?? origin.peer });
    return true;
  }

  /** The limits, the sticky cookie, then the router: the connection goes to one of this node's workers. */
  private handOff(peeked: Peeked, head: RequestHead | null, clientKey: ClientKey, origin: Origin): void {
    const { config, clientLimits, cluster } = this.deps;
    let limitClient: string | undefined;
    if (clientLimits !== null) {
      const checked = this.checkClientLimits(clientLimits, peeked, head, origin, clientKey);
      if (checked === true) return;
      limitClient = checked.limitClient;
    }
    // A valid sticky cookie naming a ready slot wins over the key.
    const pinned = config.stickyCookie === undefined || head === null ? -1 : this.stickySlot(readStickyCookie(head.cookie, nowSeconds(), config.stickyCookie));
    // Counted as open until a worker reports it closed: only with maxConnections.
    const heldClient = limitClient !== undefined && clientLimits?.countsOpen === true ? limitClient : undefined;
    // The worker checks the first request against requestsPerSecond with it, without parsing again.
    const firstClient = limitClient !== undefined && clientLimits?.countsRequests === true ? limitClient : undefined;
    const info: ConnectionInfo = {
      key: clientKey.key,
      keySource: pinned === -1 ? clientKey.source : 'sticky',
      worker: -1,
      proxy: origin.proxy,
      peer: origin.peer,
      peerTrusted: origin.peerTrusted,
      ...(firstClient === undefined ? {} : { firstClient }),
      ...(heldClient === undefined ? {} : { limitClient: heldClient }),
      ...(cluster === null ? {} : { node: cluster.self }),
      ...(origin.via === undefined ? {} : { via: origin.via }),
      ...(origin.addresses === undefined ? {} : { addresses: origin.addresses }),
    };
    this.deps.take({
      conn: peeked.conn,
      bytes: peeked.bytes,
      info,
      keyHash: hashKey(clientKey.key),
      acceptedAt: peeked.acceptedAt,
      peer: origin.proxySource ?? origin.peer,
      ...(pinned === -1 ? {} : { pinned }),
      ...(heldClient === undefined ? {} : { limitClient: heldClient }),
    });
  }

  /**
   * limits.perClient for a connection about to be handed off: the client its
   * counts are kept under (undefined when exempt), or true when it was refused here.
   */
  private checkClientLimits(limits: ClientLimits, peeked: Peeked, head: RequestHead | null, origin: Origin, clientKey: ClientKey): { limitClient: string | undefined } | true {
    const client = limits.clientOf(clientKey, head, origin, this.deps.config.key.forwardedTrustedHops);
    if (limits.isExempt(client)) return { limitClient: undefined };
    const now = Date.now();
    const verdict = limits.admit(client, now);
    if (verdict === null) return { limitClient: client };
    if (head !== null && limits.config.respond429) {
      this.deps.refuser.counted(verdict, { client, reason: verdict, status: 429 }, 'connection refused');
      this.deps.refuser.answerAndClose(peeked.conn, tooManyRequestsBytes(limits.retryAfterSeconds(client, now)));
    } else {
      this.deps.refuser.refuse(peeked.conn, client, verdict);
    }
    return true;
  }

  /**
   * Answers a refused first request itself: the app never sees the connection.
   * Logged (rate-limited per rule) with the real client address, counted exactly.
   */
  private refuseRequest(peeked: Peeked, head: RequestHead, refusal: Refusal): void {
    const { metrics, refuser } = this.deps;
    metrics.rejectedRequests.inc({ rule: refusal.rule, where: 'master' });
    const suppressed = refuser.admit(`request:${refusal.rule}`);
    if (suppressed >= 0) {
      const proxySource = peeked.proxy?.command === 'PROXY' ? (peeked.proxy.source?.address ?? null) : null;
      const client = realClientAddress(
        { proxySource, forwardedFor: head.forwardedFor, forwarded: head.forwarded, peer: peeked.peer, peerTrusted: peeked.peerTrusted },
        this.deps.config.key.forwardedTrustedHops,
      );
      this.deps.log.warn(
        { client, method: head.method, path: truncateForLog(head.target), rule: refusal.rule, status: refusal.status, where: 'master', suppressed },
        'request refused',
      );
    }
    refuser.answerAndClose(peeked.conn, refusalBytes(refusal, head.method === 'HEAD'));
  }

  /** The slot a sticky cookie verdict pins the connection to, or -1 (counting ignored cookies). */
  private stickySlot(verdict: StickyVerdict): number {
    if (verdict.kind === 'invalid') {
      this.deps.metrics.stickyCookieRejected.inc({ reason: verdict.reason });
      return -1;
    }
    const pool = this.deps.pool;
    if (verdict.kind !== 'valid' || verdict.slot >= pool.slotCount || pool.readyMask[verdict.slot] !== 1) return -1;
    return verdict.slot;
  }
}

/**
 * A PROXY endpoint with its address in canonical form (v1 carries addresses as
 * written: "2001:DB8::1", "::ffff:198.51.100.22"), so the app and the key agree.
 * UNIX paths are kept as they are.
 */
function canonicalEndpoint(endpoint: ProxyEndpoint | null): ProxyEndpoint | null {
  if (endpoint === null) return null;
  const address = canonicalIp(endpoint.address);
  return address === null || address === endpoint.address ? endpoint : { address, port: endpoint.port };
}
