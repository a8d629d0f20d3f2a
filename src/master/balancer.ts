import net, { type AddressInfo } from 'node:net';
import { constants } from 'node:os';
import type { Logger } from 'pino';
import type { ResolvedConfig } from '../shared/config/load.js';
import type { ConnectionInfo } from '../shared/connection-info.js';
import type { ErrorCode } from '../shared/errors.js';
import { realClientAddress, truncateForLog } from '../shared/inspect/client.js';
import { refusalBytes } from '../shared/inspect/response.js';
import { compileInspector, type Inspector, type Refusal } from '../shared/inspect/rules.js';
import { CidrList, canonicalIp } from '../shared/ip/address.js';
import { deriveKey, type ClientKey, type KeyRules } from '../shared/key/derive.js';
import { reuseMode } from '../shared/key/reuse.js';
import { nowSeconds, readStickyCookie, type StickyVerdict } from '../shared/key/sticky-cookie.js';
import { tooManyRequestsBytes } from '../shared/limits/too-many.js';
import type { RequestHead } from '../shared/protocol/http1.js';
import type { ProxyEndpoint } from '../shared/protocol/proxy.js';
import { hashKey } from '../shared/ring/farmhash.js';
import { takeOverAccept } from '../node/accept.js';
import type { MasterMetrics } from './admin/metrics.js';
import { rawConn, socketConn, type ClientConn } from './client-conn.js';
import { ClientLimits } from './client-limits.js';
import { DescriptorBudget, descriptorCeiling } from './descriptors.js';
import { healthResponse, isHealthCheck } from './health.js';
import { decidesWithoutBytes, newPeekState, readPeek, type PeekRules, type PeekState } from './peek.js';
import { PoolViewBroadcaster } from './pool-view.js';
import { Refuser } from './refuse.js';
import { Router } from './route.js';
import type { WorkerPool } from './supervisor/pool.js';
import type { WorkerProc } from './supervisor/worker-proc.js';
import type { Cluster } from './cluster/cluster.js';
import { readPeerHeader, type ForwardedFacts } from './cluster/peer-header.js';

/** Where connections come in: the public port, or the peer port other nodes forward to. */
interface Entry {
  readonly trusted: CidrList;
  readonly peekRules: PeekRules;
  /** The peer port: the key comes from the forwarding node, and nothing is forwarded again (one hop). */
  readonly fromPeer: boolean;
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

/** One connection the master is still reading. */
interface Peek extends PeekState {
  readonly entry: Entry;
  readonly conn: ClientConn;
  readonly peer: string;
  readonly acceptedAt: bigint;
  timer: NodeJS.Timeout | null;
  /** The peek is over (decided, refused or the client left). */
  settled: boolean;
  readonly onData: (chunk: Buffer) => void;
}

/**
 * The accept loop: accept → peek (src/master/peek.ts) → key → route
 * (src/master/route.ts). The master reads only as many bytes as it needs to
 * decide, writes to a client only to refuse it or answer a health check, and
 * never throws in the connection path whatever the bytes.
 */
export class Balancer {
  private readonly server: net.Server;
  /** The peer port's server (with `cluster` only). */
  private readonly peerServer: net.Server | null;
  private readonly publicEntry: Entry;
  private readonly peerEntry: Entry | null;
  private readonly rules: KeyRules;
  private readonly refuser: Refuser;
  private readonly router: Router;
  /** key.reuse "handback" and "forward": the pool view the workers place with (null: they need none). */
  private readonly poolView: PoolViewBroadcaster | null;
  /** limits.perClient, or null: no section, no cost. */
  private readonly clientLimits: ClientLimits | null;
  /** The inspect rules, or null: no section, no cost. */
  private readonly inspector: Inspector | null;
  /** Whether the master is about to run out of descriptors (null: its limit is unknown). */
  private readonly descriptors: DescriptorBudget | null;
  /** Connections still being read, oldest first: the first to go when descriptors run out. */
  private readonly peeks = new Set<Peek>();
  /** Set once the balancer is stopping: the health check answers 503 from then on. */
  private stopping = false;

  constructor(
    private readonly config: ResolvedConfig,
    private readonly pool: WorkerPool,
    private readonly log: Logger,
    private readonly metrics: MasterMetrics,
    /** Many nodes, or null: one node, no cost. */
    private readonly cluster: Cluster | null = null,
  ) {
    this.rules = config.key;
    const clientLimits = config.limits.perClient ? new ClientLimits(config.limits.perClient) : null;
    this.clientLimits = clientLimits;
    if (clientLimits !== null) metrics.clientTableSize = () => clientLimits.size;
    this.inspector = config.inspect ? compileInspector(config.inspect) : null;
    const needsHead =
      config.key.order.some((source) => source === 'cookie' || source === 'forwarded') || config.stickyCookie !== undefined || config.health !== undefined || this.inspector !== null;
    this.publicEntry = { trusted: CidrList.parse(config.proxyProtocol.trustedFrom), peekRules: { peekBytes: config.limits.peekBytes, proxyMode: config.proxyProtocol.mode, needsHead }, fromPeer: false };
    // The peer port takes only PROXY v2 from the peers it trusts (the forwarding node writes one on every connection).
    this.peerEntry = cluster && { trusted: cluster.peerTrusted, peekRules: { peekBytes: config.limits.peekBytes, proxyMode: 'required', needsHead }, fromPeer: true };
    const ceiling = descriptorCeiling();
    this.descriptors = ceiling === null ? null : new DescriptorBudget(ceiling);
    this.refuser = new Refuser(metrics, log);
    const poolView = reuseMode(config.key) === 'close' ? null : new PoolViewBroadcaster(pool);
    this.poolView = poolView;
    this.router = new Router(pool, metrics, log, this.refuser, clientLimits, () => this.config.limits.peekTimeoutMs, poolView === null ? noop : () => poolView.check(false));
    // Where raw handles can be read (src/node/tcp-handle.ts), listen() takes accept over and the
    // master never builds a net.Socket for a connection it only peeks at. Else
    // net.Server's sockets, with pauseOnConnect: not one byte is read before we
    // attach our listener and decide to resume, so nothing can be read into a void.
    // No noDelay here: the worker runtime sets TCP_NODELAY as the app's server asks (src/worker/runtime.ts applySocketOptions).
    this.server = net.createServer({ pauseOnConnect: true }, (socket) => this.onConnection(socketConn(socket), this.publicEntry));
    this.server.on('error', (error) => this.log.error({ err: error.message }, 'listener error'));
    const peerEntry = this.peerEntry;
    this.peerServer = peerEntry && net.createServer({ pauseOnConnect: true }, (socket) => this.onConnection(socketConn(socket), peerEntry));
    this.peerServer?.on('error', (error) => this.log.error({ err: error.message }, 'peer listener error'));
  }

  /**
   * Starts listening (on `inherited`'s socket when a previous master handed it
   * over, else on listen.host:port); resolves with the bound address.
   */
  listen(inherited?: net.Server): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.server.once('error', onError);
      const where = inherited ?? { host: this.config.listen.host, port: this.config.listen.port, backlog: 4096 };
      this.server.listen(where, () => {
        this.server.removeListener('error', onError);
        // What Node's cluster round-robin does: take the raw client handles
        // from accept (net.Server would wrap each in a net.Socket first).
        takeOverAccept(this.server, (handle) => this.onConnection(rawConn(handle), this.publicEntry), (errno) => this.onAcceptError(errno));
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** Starts listening on the peer port (`cluster.peer`); resolves with the bound address. */
  listenPeer(inherited?: net.Server): Promise<AddressInfo> {
    const server = this.peerServer as net.Server;
    const entry = this.peerEntry as Entry;
    const peer = (this.cluster as Cluster) && this.config.cluster?.peer;
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      server.once('error', onError);
      server.listen(inherited ?? { host: peer?.host, port: peer?.port, backlog: 4096 }, () => {
        server.removeListener('error', onError);
        takeOverAccept(server, (handle) => this.onConnection(rawConn(handle), entry), (errno) => this.onAcceptError(errno));
        resolve(server.address() as AddressInfo);
      });
    });
  }

  /** The peer port's listening server, or null without `cluster`. */
  get peerListener(): net.Server | null {
    return this.peerServer;
  }

  /** The balancer is going away: health checks fail while it still serves (config `health.graceMs`). */
  markStopping(): void {
    this.stopping = true;
  }

  /** The listening server (handed to a new master on an upgrade). */
  get listener(): net.Server {
    return this.server;
  }

  /** Stops accepting. Connections already held are still handed off. */
  close(): Promise<void> {
    this.poolView?.stop();
    const peer = this.peerServer;
    const closed = (server: net.Server): Promise<void> => new Promise((resolve) => server.close(() => resolve()));
    return Promise.all([closed(this.server), peer?.listening === true ? closed(peer) : Promise.resolve()]).then(() => {});
  }

  /** Connections the master holds: peeking, waiting for a worker or in flight to one. */
  get heldConnections(): number {
    return this.peeks.size + this.router.holding;
  }

  /** The hooks the worker pool calls (acks, exits, hand-backs, closed clients). */
  get routing(): Pick<Router, 'onAck' | 'onExit' | 'onHandback' | 'onHandbackHandle'> {
    return this.router;
  }

  /** A worker reports connections closed that counted against their clients. */
  onClientsClosed(proc: WorkerProc, clients: readonly string[]): void {
    this.clientLimits?.closedBy(proc, clients);
  }

  /**
   * accept(2) failed: the listener goes on; logged at a bounded rate. Out of
   * descriptors, libuv closes what waits in the backlog itself (its reserve
   * descriptor) and mostly does not report it; the ceiling below keeps the
   * master from getting there.
   */
  private onAcceptError(error: number): void {
    const reason = error === UV_EMFILE || error === UV_ENFILE ? 'ERR_EMFILE' : 'ERR_ACCEPT';
    this.metrics.refused.inc({ reason });
    this.refuser.error(reason, { errno: error, reason }, 'accept failed');
  }

  /**
   * A connection came in at the descriptor ceiling. The oldest connection
   * still being read goes, as nginx reuses its oldest idle connections when it
   * runs out: under a flood of idle connections those are the flood's own,
   * and clients that send their head at once keep being served. With none
   * (every descriptor is in flight to a worker) the new one is refused.
   * True when the new connection may go on.
   */
  private makeRoom(conn: ClientConn, peer: string): boolean {
    const oldest = this.peeks.values().next();
    if (oldest.done === true) {
      this.refuser.refuse(conn, peer, 'ERR_EMFILE');
      return false;
    }
    this.refusePeek(oldest.value, 'ERR_EMFILE');
    return true;
  }

  private onConnection(conn: ClientConn, entry: Entry): void {
    const acceptedAt = process.hrtime.bigint();
    const peer = canonicalIp(conn.peer) ?? '';
    const held = this.heldConnections;
    if (this.descriptors?.isFull(conn.fd, held) === true && !this.makeRoom(conn, peer)) return;
    const max = this.config.limits.maxConnections;
    if (max !== undefined && held + this.pool.activeConnections() >= max) {
      this.refuser.refuse(conn, peer, 'ERR_MAX_CONNECTIONS');
      return;
    }
    const peerTrusted = peer !== '' && entry.trusted.contains(peer);
    if (entry.peekRules.proxyMode === 'required' && !peerTrusted) {
      // No header this peer could send would be honoured: close before reading a byte.
      this.refuser.refuse(conn, peer, 'ERR_PROXY_UNTRUSTED');
      return;
    }
    this.metrics.peeking.inc();
    if (entry.fromPeer) this.cluster?.fromPeer();
    const peek: Peek = {
      ...newPeekState(peerTrusted, entry.peekRules),
      entry,
      conn,
      peer,
      acceptedAt,
      timer: null,
      settled: false,
      onData: (chunk) => this.onData(peek, chunk),
    };
    peek.timer = setTimeout(() => this.onPeekTimeout(peek), this.config.limits.peekTimeoutMs);
    this.peeks.add(peek);
    conn.read(peek.onData, () => this.onPeekClose(peek));
    // A key that does not depend on any byte (e.g. order ["remote"] with PROXY off) is known now.
    if (decidesWithoutBytes(entry.peekRules)) this.decide(peek, null);
  }

  private onData(peek: Peek, chunk: Buffer): void {
    const step = readPeek(peek, chunk, peek.entry.peekRules);
    if (step.kind === 'refuse') this.refusePeek(peek, step.code);
    else if (step.kind === 'decide') this.decide(peek, step.head);
  }

  private onPeekTimeout(peek: Peek): void {
    peek.timer = null;
    // A client that sent nothing, or stalls mid-head, is closed: handing it to a
    // worker would only move the slowloris there (documented in the README).
    this.refusePeek(peek, 'ERR_PEEK_TIMEOUT');
  }

  private onPeekClose(peek: Peek): void {
    // The client left before we decided; after a decision this is a no-op.
    this.endPeek(peek);
  }

  /** Leaves the peek phase exactly once: timer off, gauge down. False if already left. */
  private endPeek(peek: Peek): boolean {
    if (peek.settled) return false;
    peek.settled = true;
    this.peeks.delete(peek);
    if (peek.timer) clearTimeout(peek.timer);
    peek.timer = null;
    this.metrics.peeking.dec();
    return true;
  }

  private refusePeek(peek: Peek, code: ErrorCode): void {
    if (!this.endPeek(peek)) return;
    peek.conn.stopReading();
    this.refuser.refuse(peek.conn, peek.peer, code);
  }

  /** Answers a connection the master read from itself (writing is fine on it), then a bounded lingering close. */
  private answer(peek: Peek, bytes: Buffer): void {
    peek.buffered = null;
    this.refuser.answerAndClose(peek.conn, bytes);
  }

  /**
   * limits.perClient for a connection about to be handed off: null when it may
   * go (with the client its open count is kept under, if counted), or true when
   * it was refused here.
   */
  private checkClientLimits(peek: Peek, head: RequestHead | null, origin: Origin, clientKey: { key: string; source: string }): { limitClient: string | undefined } | true {
    const limits = this.clientLimits as ClientLimits;
    const { proxySource } = origin;
    // Where the key is the address realClientAddress would find (same rules, same precedence), use it: no second parse.
    const keyIsClient =
      clientKey.source === 'proxy' ||
      (proxySource === null && (clientKey.source === 'forwarded' || (clientKey.source === 'remote' && (!origin.peerTrusted || head === null || (head.forwardedFor.length === 0 && head.forwarded.length === 0)))));
    const client = keyIsClient
      ? clientKey.key
      : realClientAddress(
          { proxySource, forwardedFor: head?.forwardedFor ?? [], forwarded: head?.forwarded ?? [], peer: origin.peer, peerTrusted: origin.peerTrusted },
          this.rules.forwardedTrustedHops,
        );
    if (limits.isExempt(client)) return { limitClient: undefined };
    const now = Date.now();
    const verdict = limits.admit(client, now);
    if (verdict === null) return { limitClient: client };
    if (head !== null && limits.config.respond429) {
      this.refuser.counted(verdict, { client, reason: verdict, status: 429 }, 'connection refused');
      this.answer(peek, tooManyRequestsBytes(limits.retryAfterSeconds(client, now)));
    } else {
      this.refuser.refuse(peek.conn, client, verdict);
    }
    return true;
  }

  private decide(peek: Peek, head: RequestHead | null): void {
    if (!this.endPeek(peek)) return;
    // The load balancer's health check, before inspection (its Host is often an address) and before any limit.
    if (head !== null && this.config.health !== undefined && isHealthCheck(head.method, head.target, this.config.health.path)) {
      this.answer(peek, healthResponse(this.pool.readyCount(), this.stopping, head.method === 'HEAD'));
      return;
    }
    // Bytes that are not an HTTP/1.x head (TLS, HTTP/2, binary, a head over
    // peekBytes) are not inspected here; the worker runtime checks what it parses.
    if (head !== null && this.inspector !== null) {
      const refusal = this.inspector(head.method, head.target, head.host);
      if (refusal !== null) {
        this.refuseRequest(peek, head, refusal);
        return;
      }
    }
    // Same synchronous callback as the decision: stop reading before anything else.
    peek.conn.stopReading();
    const proxySource = peek.proxy?.command === 'PROXY' ? (peek.proxy.source?.address ?? null) : null;
    const proxy: ConnectionInfo['proxy'] = peek.proxy && { source: canonicalEndpoint(peek.proxy.source), destination: canonicalEndpoint(peek.proxy.destination), tlvs: peek.proxy.tlvs };
    const bytes = peek.buffered === null ? EMPTY : peek.offset === 0 ? peek.buffered : peek.buffered.subarray(peek.offset);
    peek.buffered = null;
    // From a peer: the key and the client as the entry node saw them (never derived twice).
    const forwarded = peek.entry.fromPeer && proxy !== null ? readPeerHeader(proxy) : null;
    if (forwarded !== null) {
      const origin: Origin = { proxySource: forwarded.proxy?.source?.address ?? null, peer: forwarded.peer, peerTrusted: forwarded.peerTrusted, proxy: forwarded.proxy, addresses: forwarded.addresses, via: forwarded.via };
      this.handOff(peek, head, bytes, { key: forwarded.key, source: forwarded.keySource }, origin);
      return;
    }
    let clientKey: ClientKey;
    try {
      clientKey = deriveKey({ head, proxySource, peerAddress: peek.peer, peerTrusted: peek.peerTrusted }, this.rules);
    } catch (error) {
      // deriveKey is total; this is a last line of defence for the master's event loop.
      this.log.error({ client: peek.peer, err: (error as Error).message }, 'key derivation failed');
      clientKey = { key: peek.peer, source: 'remote' };
    }
    const origin: Origin = { proxySource, peer: peek.peer, peerTrusted: peek.peerTrusted, proxy };
    const cluster = this.cluster;
    if (cluster !== null && !peek.entry.fromPeer) {
      const keyHash = hashKey(clientKey.key);
      const owner = cluster.ownerOf(keyHash);
      if (owner !== cluster.self) {
        // Limits are the owner's: every connection of a key meets there, whichever node it entered.
        const facts: ForwardedFacts = { key: clientKey.key, keySource: clientKey.source, peer: peek.peer, peerTrusted: peek.peerTrusted, proxy, via: cluster.self };
        const forward = cluster.plan(facts, peek.conn.endpoints(), keyHash, owner, peek.acceptedAt);
        if (forward !== null) {
          // The key's worker here pumps it (and serves it when no node answers): the master only hands off.
          const info: ConnectionInfo = { key: clientKey.key, keySource: clientKey.source, worker: -1, proxy, peer: peek.peer, peerTrusted: peek.peerTrusted, node: cluster.self, forward };
          this.router.take({ conn: peek.conn, bytes, info, keyHash, acceptedAt: peek.acceptedAt, peer: origin.proxySource ?? origin.peer });
          return;
        }
      }
    }
    this.handOff(peek, head, bytes, clientKey, origin);
  }

  /** The limits, the sticky cookie, then the router: the connection goes to one of this node's workers. */
  private handOff(peek: Peek, head: RequestHead | null, bytes: Buffer, clientKey: ClientKey, origin: Origin): void {
    let limitClient: string | undefined;
    if (this.clientLimits !== null) {
      const checked = this.checkClientLimits(peek, head, origin, clientKey);
      if (checked === true) return;
      limitClient = checked.limitClient;
    }
    // A valid sticky cookie naming a ready slot wins over the key.
    const pinned = this.config.stickyCookie === undefined || head === null ? -1 : this.stickySlot(readStickyCookie(head.cookie, nowSeconds(), this.config.stickyCookie));
    // Counted as open until a worker reports it closed: only with maxConnections.
    const heldClient = limitClient !== undefined && this.clientLimits?.countsOpen === true ? limitClient : undefined;
    const info: ConnectionInfo = {
      key: clientKey.key,
      keySource: pinned === -1 ? clientKey.source : 'sticky',
      worker: -1,
      proxy: origin.proxy,
      peer: origin.peer,
      peerTrusted: origin.peerTrusted,
      // The worker checks this connection's first request against requestsPerSecond with it, without parsing again.
      ...(limitClient === undefined ? {} : { firstClient: limitClient }),
      ...(heldClient === undefined ? {} : { limitClient: heldClient }),
      ...(this.cluster === null ? {} : { node: this.cluster.self }),
      ...(origin.via === undefined ? {} : { via: origin.via }),
      ...(origin.addresses === undefined ? {} : { addresses: origin.addresses }),
    };
    this.router.take({
      conn: peek.conn,
      bytes,
      info,
      keyHash: hashKey(clientKey.key),
      acceptedAt: peek.acceptedAt,
      peer: origin.proxySource ?? origin.peer,
      ...(pinned === -1 ? {} : { pinned }),
      ...(heldClient === undefined ? {} : { limitClient: heldClient }),
    });
  }

  /**
   * Answers a refused first request itself: the app never sees the connection.
   * Logged (rate-limited per rule) with the real client address, counted exactly.
   */
  private refuseRequest(peek: Peek, head: RequestHead, refusal: Refusal): void {
    this.metrics.rejectedRequests.inc({ rule: refusal.rule, where: 'master' });
    const suppressed = this.refuser.admit(`request:${refusal.rule}`);
    if (suppressed >= 0) {
      const proxySource = peek.proxy?.command === 'PROXY' ? (peek.proxy.source?.address ?? null) : null;
      const client = realClientAddress(
        { proxySource, forwardedFor: head.forwardedFor, forwarded: head.forwarded, peer: peek.peer, peerTrusted: peek.peerTrusted },
        this.rules.forwardedTrustedHops,
      );
      this.log.warn(
        { client, method: head.method, path: truncateForLog(head.target), rule: refusal.rule, status: refusal.status, where: 'master', suppressed },
        'request refused',
      );
    }
    this.answer(peek, refusalBytes(refusal, head.method === 'HEAD'));
  }

  /** The slot a sticky cookie verdict pins the connection to, or -1 (counting ignored cookies). */
  private stickySlot(verdict: StickyVerdict): number {
    if (verdict.kind === 'invalid') {
      this.metrics.stickyCookieRejected.inc({ reason: verdict.reason });
      return -1;
    }
    if (verdict.kind !== 'valid' || verdict.slot >= this.pool.slotCount || this.pool.readyMask[verdict.slot] !== 1) return -1;
    return verdict.slot;
  }
}

const EMPTY = Buffer.alloc(0);

/** libuv reports "too many open files" (per process, system-wide) as the negated errno on Unix. */
const UV_EMFILE = -constants.errno.EMFILE;
const UV_ENFILE = -constants.errno.ENFILE;

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

function noop(): void {
  // No pool view to keep current (key.reuse "close").
}
