import net, { type AddressInfo } from 'node:net';
import { constants } from 'node:os';
import type { Logger } from 'pino';
import type { ResolvedConfig } from '../shared/config/load.js';
import type { ErrorCode } from '../shared/errors.js';
import { CidrList, canonicalIp } from '../shared/ip/address.js';
import { reuseMode } from '../shared/key/reuse.js';
import type { RequestHead } from '../shared/protocol/http1.js';
import { takeOverAccept } from '../node/accept.js';
import type { MasterMetrics } from './admin/metrics.js';
import { rawConn, socketConn, type ClientConn } from './client-conn.js';
import { ClientLimits } from './client-limits.js';
import { DescriptorBudget, descriptorCeiling } from './descriptors.js';
import { decidesWithoutBytes, newPeekState, readPeek, type PeekRules, type PeekState } from './peek.js';
import { PoolViewBroadcaster } from './pool-view.js';
import { Refuser } from './refuse.js';
import { Decider } from './decide.js';
import { Router } from './route.js';
import type { WorkerPool } from './supervisor/pool.js';
import type { WorkerProc } from './supervisor/worker-proc.js';
import type { Cluster } from './cluster/cluster.js';

/** Where connections come in: the public port, or the peer port other nodes forward to. */
interface Entry {
  readonly trusted: CidrList;
  readonly peekRules: PeekRules;
  /** The peer port: the key comes from the forwarding node, and nothing is forwarded again (one hop). */
  readonly fromPeer: boolean;
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
  private readonly refuser: Refuser;
  private readonly router: Router;
  /** key.reuse "handback" and "forward": the pool view the workers place with (null: they need none). */
  private readonly poolView: PoolViewBroadcaster | null;
  /** limits.perClient, or null: no section, no cost. */
  private readonly clientLimits: ClientLimits | null;
  /** What becomes of each connection once its peek is over. */
  private readonly decider: Decider;
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
    const clientLimits = config.limits.perClient ? new ClientLimits(config.limits.perClient) : null;
    this.clientLimits = clientLimits;
    if (clientLimits !== null) metrics.clientTableSize = () => clientLimits.size;
    const needsHead =
      config.key.order.some((source) => source === 'cookie' || source === 'forwarded') || config.stickyCookie !== undefined || config.health !== undefined || Boolean(config.inspect);
    this.publicEntry = { trusted: CidrList.parse(config.proxyProtocol.trustedFrom), peekRules: { peekBytes: config.limits.peekBytes, proxyMode: config.proxyProtocol.mode, needsHead }, fromPeer: false };
    // The peer port takes only PROXY v2 from the peers it trusts (the forwarding node writes one on every connection).
    this.peerEntry = cluster && { trusted: cluster.peerTrusted, peekRules: { peekBytes: config.limits.peekBytes, proxyMode: 'required', needsHead }, fromPeer: true };
    const ceiling = descriptorCeiling();
    this.descriptors = ceiling === null ? null : new DescriptorBudget(ceiling);
    this.refuser = new Refuser(metrics, log);
    const poolView = reuseMode(config.key) === 'close' ? null : new PoolViewBroadcaster(pool);
    this.poolView = poolView;
    const router = new Router(pool, metrics, log, this.refuser, clientLimits, () => this.config.limits.peekTimeoutMs, poolView === null ? noop : () => poolView.check(false));
    this.router = router;
    this.decider = new Decider({ config, pool, take: (handoff) => router.take(handoff), refuser: this.refuser, metrics, log, clientLimits, cluster, stopping: () => this.stopping });
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

  private decide(peek: Peek, head: RequestHead | null): void {
    if (!this.endPeek(peek)) return;
    const bytes = peek.buffered === null ? EMPTY : peek.offset === 0 ? peek.buffered : peek.buffered.subarray(peek.offset);
    peek.buffered = null;
    this.decider.decide({ conn: peek.conn, peer: peek.peer, peerTrusted: peek.peerTrusted, proxy: peek.proxy, fromPeer: peek.entry.fromPeer, acceptedAt: peek.acceptedAt, bytes }, head);
  }
}

const EMPTY = Buffer.alloc(0);

/** libuv reports "too many open files" (per process, system-wide) as the negated errno on Unix. */
const UV_EMFILE = -constants.errno.EMFILE;
const UV_ENFILE = -constants.errno.ENFILE;

function noop(): void {
  // No pool view to keep current (key.reuse "close").
}
