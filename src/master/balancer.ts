import net, { type AddressInfo, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { MasterMetrics } from './admin/metrics.js';
import type { ResolvedConfig } from '../shared/config/load.js';
import type { ConnectionInfo } from '../shared/connection-info.js';
import type { ErrorCode } from '../shared/errors.js';
import { CidrList, canonicalIp } from '../shared/ip/address.js';
import { deriveKey, type KeyRules } from '../shared/key/derive.js';
import { realClientAddress, truncateForLog } from '../shared/inspect/client.js';
import { refusalBytes } from '../shared/inspect/response.js';
import { compileInspector, type Inspector, type Refusal } from '../shared/inspect/rules.js';
import type { WorkerPool, WorkerProc } from './supervisor/pool.js';
import type { WorkerMessage } from '../shared/wire/ipc.js';
import type { BatchEntry, HandbackKey } from '../shared/wire/fd-batch.js';
import { bytesFromWire, infoFromWire } from '../shared/wire/connection.js';
import { parseRequestHead, type RequestHead } from '../shared/protocol/http1.js';
import { parseProxyHeader, type ProxyEndpoint, type ProxyHeader } from '../shared/protocol/proxy.js';
import { hashKey } from '../shared/ring/farmhash.js';
import { nowSeconds, readStickyCookie, type StickyVerdict } from '../shared/key/sticky-cookie.js';
import { reuseMode } from '../shared/key/reuse.js';
import { LogLimiter } from '../shared/log/log-limiter.js';
import { ClientLimits } from './client-limits.js';
import { tooManyRequestsBytes } from '../shared/limits/too-many.js';
import { rawConn, socketConn, type ClientConn } from './client-conn.js';
import { takeOverAccept } from '../node/accept.js';
import { stopSocketReads } from '../node/socket.js';
import { healthResponse, isHealthCheck } from './health.js';
import { constants } from 'node:os';
import { DescriptorBudget, descriptorCeiling } from './descriptors.js';

/**
 * While fewer bytes than this are buffered, every chunk is parsed at once so
 * that non-HTTP bytes (a TLS ClientHello, SSH, binary) are recognised from the
 * first packet. Past it, a chunk is parsed only when it holds a LF: a head can
 * only end at one, and re-parsing on every byte of a slow drip would cost
 * O(n²) per hostile client.
 */
const EAGER_PARSE_BYTES = 512;

/**
 * How long the master keeps a connection whose first request it refused
 * (inspect rules) after writing the answer: it reads and drops what the client
 * still sends meanwhile, so that closing does not reset the connection before
 * the client has read the answer (NGINX's lingering_close, bounded).
 */
const REFUSAL_LINGER_MS = 1000;

/** How often the master looks for a changed pool view to send to the workers (key.reuse "handback"). */
const POOL_VIEW_CHECK_MS = 100;

/** How often a connection that found no ready worker looks again (bounded by peekTimeoutMs). */
const NO_WORKER_RETRY_MS = 25;

/** A connection handed to a worker and not yet acknowledged. */
interface PendingHandoff {
  readonly conn: ClientConn;
  readonly bytes: Buffer;
  readonly info: ConnectionInfo;
  readonly keyHash: number;
  readonly acceptedAt: bigint;
  readonly peer: string;
  proc: WorkerProc;
  /** Slots already tried (re-routes skip them). */
  readonly tried: number[];
  /** The slot a valid sticky cookie names (used while it is ready and not tried). */
  readonly pinned?: number;
  /** The slot that handed this connection back (key.reuse "handback"). */
  readonly handedBackBy?: number;
  /** The client address its open-connection count is kept under (limits.perClient.maxConnections). */
  readonly limitClient?: string;
}

/** Where the master is with one connection it is still reading. */
interface Peek {
  readonly conn: ClientConn;
  readonly peer: string;
  readonly peerTrusted: boolean;
  readonly acceptedAt: bigint;
  buffered: Buffer | null;
  /** 'proxy' while a PROXY header may still come; then 'head'. */
  phase: 'proxy' | 'head';
  /** Where the application bytes start (after an honoured PROXY header). */
  offset: number;
  proxy: ProxyHeader | null;
  timer: NodeJS.Timeout | null;
  /** The peek is over (decided, refused or the client left). */
  settled: boolean;
  onData: (chunk: Buffer) => void;
}

/**
 * The accept loop: peek → key → hash → hand-off. The master reads only as many
 * bytes as it needs to decide, never writes to a client in the normal path, and
 * never throws in the connection path whatever the bytes.
 */
export class Balancer {
  private readonly server: net.Server;
  private readonly trusted: CidrList;
  private readonly rules: KeyRules;
  private readonly pending = new Map<number, PendingHandoff>();
  /** key.reuse "handback": the last pool view sent to the workers, and the timer looking for changes. */
  private poolViewSignature = '';
  private fullSignature = '';
  private poolViewTimer: NodeJS.Timeout | null = null;
  private readonly logLimiter = new LogLimiter();
  /** limits.perClient, or null: no section, no cost. */
  private readonly clientLimits: ClientLimits | null;
  /** Connections the master holds: peeking or in flight to a worker. */
  private held = 0;
  private nextId = 1;
  /** A PROXY v2 header may not be longer than what the master is willing to peek. */
  private readonly proxyOptions: { readonly maxBytes: number };
  /** Whether the first request head is needed to decide (cookie or forwarded in key.order). */
  private readonly headMatters: boolean;
  /** The inspect rules, or null: no section, no cost. */
  private readonly inspector: Inspector | null;
  /** Whether the master is about to run out of descriptors (null: its limit is unknown). */
  private readonly descriptors: DescriptorBudget | null;
  /** Connections still being read, oldest first: the first to go when descriptors run out. */
  private readonly peeks = new Set<Peek>();

  constructor(
    private readonly config: ResolvedConfig,
    private readonly pool: WorkerPool,
    private readonly log: Logger,
    private readonly metrics: MasterMetrics,
  ) {
    this.trusted = CidrList.parse(config.proxyProtocol.trustedFrom);
    this.clientLimits = config.limits.perClient ? new ClientLimits(config.limits.perClient) : null;
    const clientLimits = this.clientLimits;
    if (clientLimits !== null) metrics.clientTableSize = () => clientLimits.size;
    this.rules = config.key;
    this.proxyOptions = { maxBytes: config.limits.peekBytes };
    this.headMatters = config.key.order.some((source) => source === 'cookie' || source === 'forwarded') || config.stickyCookie !== undefined || config.health !== undefined;
    this.inspector = config.inspect ? compileInspector(config.inspect) : null;
    const ceiling = descriptorCeiling();
    this.descriptors = ceiling === null ? null : new DescriptorBudget(ceiling);
    // Where raw handles can be read (src/node/tcp-handle.ts), listen() takes accept over and the
    // master never builds a net.Socket for a connection it only peeks at. Else
    // net.Server's sockets, with pauseOnConnect: not one byte is read before we
    // attach our listener and decide to resume, so nothing can be read into a void.
    // No noDelay here: the worker runtime sets TCP_NODELAY as the app's server asks (src/worker/runtime.ts applySocketOptions).
    this.server = net.createServer({ pauseOnConnect: true }, (socket) => this.onConnection(socketConn(socket)));
    this.server.on('error', (error) => this.log.error({ err: error.message }, 'listener error'));
    if (reuseMode(config.key) !== 'close') this.poolViewTimer = setInterval(() => this.checkPoolView(), POOL_VIEW_CHECK_MS).unref();
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
        takeOverAccept(this.server, (handle) => this.onConnection(rawConn(handle)), (errno) => this.onAcceptError(errno));
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** Set once the balancer is stopping: the health check answers 503 from then on. */
  private stopping = false;

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
    if (this.poolViewTimer !== null) clearInterval(this.poolViewTimer);
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Connections not yet acknowledged by a worker. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Connections the master holds (peeking or in flight). */
  get heldConnections(): number {
    return this.held;
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
    const suppressed = this.logLimiter.admit(reason);
    if (suppressed >= 0) this.log.error({ errno: error, reason, suppressed }, 'accept failed');
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
      this.refuse(conn, peer, 'ERR_EMFILE');
      return false;
    }
    this.refusePeek(oldest.value, 'ERR_EMFILE');
    return true;
  }

  private onConnection(conn: ClientConn): void {
    const acceptedAt = process.hrtime.bigint();
    const peer = canonicalIp(conn.peer) ?? '';
    if (this.descriptors?.isFull(conn.fd, this.held) === true && !this.makeRoom(conn, peer)) return;
    const max = this.config.limits.maxConnections;
    if (max !== undefined && this.held + this.pool.activeConnections() >= max) {
      this.refuse(conn, peer, 'ERR_MAX_CONNECTIONS');
      return;
    }
    const peerTrusted = peer !== '' && this.trusted.contains(peer);
    const mode = this.config.proxyProtocol.mode;
    if (mode === 'required' && !peerTrusted) {
      // No header this peer could send would be honoured: close before reading a byte.
      this.refuse(conn, peer, 'ERR_PROXY_UNTRUSTED');
      return;
    }
    this.held++;
    this.metrics.peeking.inc();
    const peek: Peek = {
      conn,
      peer,
      peerTrusted,
      acceptedAt,
      buffered: null,
      phase: mode === 'off' ? 'head' : 'proxy',
      offset: 0,
      proxy: null,
      timer: null,
      settled: false,
      onData: (chunk) => this.onData(peek, chunk),
    };
    peek.timer = setTimeout(() => this.onPeekTimeout(peek), this.config.limits.peekTimeoutMs);
    this.peeks.add(peek);
    conn.read(peek.onData, () => this.onPeekClose(peek));
    // A key that does not depend on any byte (e.g. order ["remote"] with PROXY off) is known now.
    if (peek.phase === 'head' && !this.headMatters && !this.config.inspect) this.decide(peek, null);
  }

  private onData(peek: Peek, chunk: Buffer): void {
    const previous = peek.buffered;
    const buffered = previous === null ? chunk : Buffer.concat([previous, chunk]);
    peek.buffered = buffered;
    if (peek.phase === 'proxy') {
      const result = parseProxyHeader(buffered, this.proxyOptions);
      switch (result.kind) {
        case 'need-more':
          if (buffered.length > this.config.limits.peekBytes) this.refusePeek(peek, 'ERR_PEEK_LIMIT');
          return;
        case 'error':
          this.refusePeek(peek, peek.peerTrusted ? result.code : 'ERR_PROXY_UNTRUSTED');
          return;
        case 'absent':
          if (this.config.proxyProtocol.mode === 'required') {
            this.refusePeek(peek, 'ERR_PROXY_REQUIRED');
            return;
          }
          peek.phase = 'head';
          break;
        case 'done':
          if (!peek.peerTrusted) {
            this.refusePeek(peek, 'ERR_PROXY_UNTRUSTED');
            return;
          }
          peek.proxy = result.value;
          peek.offset = result.consumed;
          peek.phase = 'head';
          if (!this.headMatters && !this.config.inspect) {
            this.decide(peek, null);
            return;
          }
          break;
      }
    } else if (buffered.length - peek.offset > EAGER_PARSE_BYTES && chunk.indexOf(10) === -1 && previous !== null && previous.length > peek.offset) {
      // Slow drip without a line end: the head cannot have ended (see EAGER_PARSE_BYTES).
      // Only once some head bytes were parsed already: the first chunk after a PROXY
      // header (e.g. curl's 517-byte ClientHello, often without a 0x0A) must be parsed,
      // or a TLS client would wait for peekBytes that never come.
      if (buffered.length - peek.offset >= this.config.limits.peekBytes) this.decide(peek, null);
      return;
    }
    if (buffered.length === peek.offset) return;
    const result = parseRequestHead(buffered, peek.offset, this.config.limits.peekBytes);
    if (result.kind === 'need-more') return;
    // A head that is not HTTP/1.x (TLS, HTTP/2 preface, binary) or too large is
    // handed off at once with the key sources that need no head.
    this.decide(peek, result.kind === 'done' ? result.value : null);
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
    this.held--;
    this.metrics.peeking.dec();
    return true;
  }

  private refusePeek(peek: Peek, code: ErrorCode): void {
    if (!this.endPeek(peek)) return;
    peek.conn.stopReading();
    this.refuse(peek.conn, peek.peer, code);
  }

  /**
   * limits.perClient for a connection about to be handed off: null when it may
   * go (with the client its open count is kept under, if counted), or true when
   * it was refused here.
   */
  private checkClientLimits(peek: Peek, head: RequestHead | null, proxySource: string | null, clientKey: { key: string; source: string }): { limitClient: string | undefined } | true {
    const limits = this.clientLimits as ClientLimits;
    // Where the key is the address realClientAddress would find (same rules, same precedence), use it: no second parse.
    const keyIsClient =
      clientKey.source === 'proxy' ||
      (proxySource === null && (clientKey.source === 'forwarded' || (clientKey.source === 'remote' && (!peek.peerTrusted || head === null || (head.forwardedFor.length === 0 && head.forwarded.length === 0)))));
    const client = keyIsClient
      ? clientKey.key
      : realClientAddress(
          { proxySource, forwardedFor: head?.forwardedFor ?? [], forwarded: head?.forwarded ?? [], peer: peek.peer, peerTrusted: peek.peerTrusted },
          this.rules.forwardedTrustedHops,
        );
    if (limits.isExempt(client)) return { limitClient: undefined };
    const now = Date.now();
    const verdict = limits.admit(client, now);
    if (verdict === null) return { limitClient: client };
    if (head !== null && limits.config.respond429) {
      this.metrics.refused.inc({ reason: verdict });
      const suppressed = this.logLimiter.admit(verdict);
      if (suppressed >= 0) this.log.warn({ client, reason: verdict, status: 429, suppressed }, 'connection refused');
      this.answerAndClose(peek, tooManyRequestsBytes(limits.retryAfterSeconds(client, now)));
    } else {
      this.refuse(peek.conn, client, verdict);
    }
    return true;
  }

  /** Writes a short answer on a connection the master read from (writing is fine on it), then a bounded lingering close. */
  private answerAndClose(peek: Peek, bytes: Buffer): void {
    const socket = peek.conn.toSocket();
    socket.on('error', ignoreError);
    socket.on('data', dropBytes);
    peek.buffered = null;
    const linger = setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS);
    socket.once('close', () => clearTimeout(linger));
    socket.end(bytes);
  }

  /** A worker reports connections closed that counted against their clients. */
  onClientsClosed(proc: WorkerProc, clients: readonly string[]): void {
    this.clientLimits?.closedBy(proc, clients);
  }

  /** Closes a connection without writing a byte; logged (rate-limited) and counted. */
  private refuse(conn: ClientConn, peer: string, code: ErrorCode): void {
    this.metrics.refused.inc({ reason: code });
    const suppressed = this.logLimiter.admit(code);
    if (suppressed >= 0) this.log.warn({ client: peer, reason: code, suppressed }, 'connection refused');
    conn.close();
  }

  private decide(peek: Peek, head: RequestHead | null): void {
    if (!this.endPeek(peek)) return;
    // The load balancer's health check, before inspection (its Host is often an address) and before any limit.
    if (head !== null && this.config.health !== undefined && isHealthCheck(head.method, head.target, this.config.health.path)) {
      this.answerAndClose(peek, healthResponse(this.pool.readyCount(), this.stopping, head.method === 'HEAD'));
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
    let clientKey;
    try {
      clientKey = deriveKey({ head, proxySource, peerAddress: peek.peer, peerTrusted: peek.peerTrusted }, this.rules);
    } catch (error) {
      // deriveKey is total; this is a last line of defence for the master's event loop.
      this.log.error({ client: peek.peer, err: (error as Error).message }, 'key derivation failed');
      clientKey = { key: peek.peer, source: 'remote' as const };
    }
    let limitClient: string | undefined;
    if (this.clientLimits !== null) {
      const checked = this.checkClientLimits(peek, head, proxySource, clientKey);
      if (checked === true) return;
      limitClient = checked.limitClient;
    }
    const keyHash = hashKey(clientKey.key);
    // A valid sticky cookie naming a ready slot wins over the key.
    const pinned = this.config.stickyCookie === undefined || head === null ? -1 : this.stickySlot(readStickyCookie(head.cookie, nowSeconds(), this.config.stickyCookie));
    const info: ConnectionInfo = {
      key: clientKey.key,
      keySource: pinned === -1 ? clientKey.source : 'sticky',
      worker: -1,
      proxy: peek.proxy && { source: canonicalEndpoint(peek.proxy.source), destination: canonicalEndpoint(peek.proxy.destination), tlvs: peek.proxy.tlvs },
      peer: peek.peer,
      peerTrusted: peek.peerTrusted,
      // The worker checks this connection's first request against requestsPerSecond with it, without parsing again.
      ...(limitClient === undefined ? {} : { firstClient: limitClient }),
      // Counted as open until a worker reports it closed: only with maxConnections.
      ...(limitClient === undefined || this.clientLimits?.countsOpen !== true ? {} : { limitClient }),
    };
    const heldClient = info.limitClient;
    const bytes = peek.buffered === null ? EMPTY : peek.offset === 0 ? peek.buffered : peek.buffered.subarray(peek.offset);
    peek.buffered = null;
    this.held++;
    this.route(
      { conn: peek.conn, bytes, info, keyHash, acceptedAt: peek.acceptedAt, peer: proxySource ?? peek.peer, proc: null as never, tried: [], ...(pinned === -1 ? {} : { pinned }), ...(heldClient === undefined ? {} : { limitClient: heldClient }) },
      null,
      Date.now(),
    );
  }

  /**
   * Answers a refused first request itself: the app never sees the connection.
   * Logged (rate-limited per rule) with the real client address, counted exactly.
   */
  private refuseRequest(peek: Peek, head: RequestHead, refusal: Refusal): void {
    this.metrics.rejectedRequests.inc({ rule: refusal.rule, where: 'master' });
    const suppressed = this.logLimiter.admit(`request:${refusal.rule}`);
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
    this.answerAndClose(peek, refusalBytes(refusal, head.method === 'HEAD'));
  }

  /** Sends a held connection to the best eligible worker; waits briefly if none is ready. */
  private route(handoff: PendingHandoff, fallbackReason: string | null, firstTry: number): void {
    if (handoff.conn.closed) {
      this.held--;
      if (handoff.limitClient !== undefined) this.clientLimits?.release(handoff.limitClient);
      return;
    }
    // The key's first choice among ready slots it was not already sent to (its
    // next choice when that slot is empty, dead or over the load bound).
    if (this.poolViewTimer !== null) this.checkPoolView(false);
    const choice = this.pool.choose(handoff.keyHash, handoff.tried, handoff.pinned);
    const slot = choice.slot;
    fallbackReason ??= choice.fallback;
    if (slot === -1) {
      if (Date.now() - firstTry >= this.config.limits.peekTimeoutMs) {
        this.held--;
        if (handoff.limitClient !== undefined) this.clientLimits?.release(handoff.limitClient);
        this.refuse(handoff.conn, handoff.peer, 'ERR_NO_WORKER');
        return;
      }
      // Every slot it was sent to is gone: a respawned worker in one of them may take it.
      handoff.tried.length = 0;
      setTimeout(() => this.route(handoff, fallbackReason ?? 'no-ready-worker', firstTry), NO_WORKER_RETRY_MS);
      return;
    }
    const proc = this.pool.worker(slot) as WorkerProc;
    const id = this.nextId++;
    const info: ConnectionInfo = { ...handoff.info, worker: slot };
    const pending: PendingHandoff = { ...handoff, info, proc };
    pending.tried.push(slot);
    this.pending.set(id, pending);
    if (fallbackReason !== null) this.metrics.fallbacks.inc({ reason: fallbackReason });
    this.pool.sendConnection(proc, id, handoff.bytes, info, handoff.conn.sendable, handoff.conn.fd, (error) => {
      if (error) this.reroute(id, 'send-failed');
    });
  }

  private reroute(id: number, reason: string): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    this.log.warn({ client: pending.peer, worker: pending.proc.slot, reason }, 'hand-off failed; re-routing');
    this.route({ ...pending, info: { ...pending.info } }, reason, Date.now());
  }

  /** A worker took connection `id`: the master's copy of the handle can go. */
  onAck(proc: WorkerProc, id: number): void {
    const pending = this.pending.get(id);
    if (!pending || pending.proc !== proc) return;
    this.pending.delete(id);
    this.held--;
    // Closing our duplicate of the descriptor; the worker holds its own.
    pending.conn.close();
    if (pending.limitClient !== undefined) this.clientLimits?.heldBy(proc, pending.limitClient);
    this.metrics.handoffs.inc({ worker: String(proc.slot), key_source: pending.info.keySource });
    if (pending.handedBackBy !== undefined && pending.handedBackBy !== proc.slot) this.metrics.reroutedRequests.inc();
    this.metrics.handoffSeconds.observe(Number(process.hrtime.bigint() - pending.acceptedAt) / 1e9);
  }

  /** A worker is gone: whatever it had not acknowledged goes to the next choice. */
  onExit(proc: WorkerProc): void {
    for (const [id, pending] of this.pending) if (pending.proc === proc) this.reroute(id, 'worker-exit');
    this.clientLimits?.workerGone(proc);
  }

  /**
   * A worker handed a connection back (key.reuse "handback"): its next
   * request belongs to another worker. It is routed like a new connection, by
   * the key the worker derived with the same code (src/shared/key/derive.ts) and the
   * slot of a valid sticky cookie; the master reads nothing again. `bytes` are
   * the ones the worker had read and not served, from the start of that request.
   */
  onHandback(proc: WorkerProc, message: Extract<WorkerMessage, { type: 'handback' }>, socket: Socket | undefined): void {
    // The client can be gone while the handle was in flight.
    if (!socket) return;
    socket.on('error', ignoreError);
    // A socket built from a received handle starts reading at once (net.Socket
    // calls read(0)); the 'message' event comes on the next tick, before any
    // I/O, so nothing has been read yet. Stop now, as for a new connection.
    stopSocketReads(socket, ignoreError);
    this.routeHandback(proc, socketConn(socket), bytesFromWire(message.bytes), infoFromWire(message.info), message);
  }

  /** A connection handed back on a worker's fd channel: a raw TCP handle that is not reading. */
  onHandbackHandle(proc: WorkerProc, entry: BatchEntry & { readonly handback: HandbackKey }, handle: object): void {
    this.routeHandback(proc, rawConn(handle), entry.bytes, entry.info, entry.handback);
  }

  private routeHandback(proc: WorkerProc, conn: ClientConn, bytes: Buffer, wireInfo: ConnectionInfo, next: HandbackKey): void {
    this.metrics.handbacks.inc();
    // firstClient was the first request's client; the request that moved the connection may be another's.
    const { firstClient: _first, ...moved } = wireInfo;
    const info: ConnectionInfo = { ...moved, key: next.key, keySource: next.keySource, worker: -1 };
    const pinned = next.stickySlot;
    // Still one connection of its client: counted again for the worker that takes it (the one handing it back releases its count).
    const limitClient = this.clientLimits?.countsOpen === true ? wireInfo.limitClient : undefined;
    if (limitClient !== undefined) this.clientLimits?.reacquire(limitClient, Date.now());
    this.held++;
    this.route(
      {
        conn,
        bytes,
        info,
        keyHash: hashKey(next.key),
        acceptedAt: process.hrtime.bigint(),
        peer: info.proxy?.source?.address ?? info.peer ?? '',
        proc: null as never,
        tried: [],
        handedBackBy: proc.slot,
        ...(typeof pinned === 'number' ? { pinned } : {}),
        ...(limitClient === undefined ? {} : { limitClient }),
      },
      null,
      Date.now(),
    );
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

  /**
   * Sends the workers the pool view (slot count, ready slots, slots at the
   * load bound) when it changed since the last time (key.reuse "handback" and
   * "forward": each worker places its requests' keys with it, by the same
   * function as here). Readiness is checked before every hand-off, the load
   * bound only every {@link POOL_VIEW_CHECK_MS} (it may flip with every
   * connection: a message to every worker each time would cost more than a
   * request placed on a slot's neighbour). A replaced worker (same mask, new
   * pid) counts as a change so that it gets the view too.
   */
  private checkPoolView(withLoad = true): void {
    const view = this.pool.placementView();
    const count = view.slotCount;
    let signature = String(count);
    for (let slot = 0; slot < count; slot++) signature += `,${view.ready[slot] === 1 ? (this.pool.worker(slot)?.pid ?? 0) : 0}`;
    let fullSignature = '';
    if (withLoad && view.full !== undefined) for (let slot = 0; slot < count; slot++) fullSignature += view.full[slot] === 1 ? '1' : '0';
    if (signature === this.poolViewSignature && (!withLoad || fullSignature === this.fullSignature)) return;
    this.poolViewSignature = signature;
    if (withLoad) this.fullSignature = fullSignature;
    const ready = Array.from(view.ready.subarray(0, count));
    const full = view.full === undefined ? undefined : Array.from(view.full.subarray(0, count));
    // The pids name each ready worker's link (key.reuse "forward", src/worker/link/link.ts).
    const pids = ready.map((isReady, slot) => (isReady === 1 ? (this.pool.worker(slot)?.pid ?? 0) : 0));
    for (let slot = 0; slot < count; slot++) {
      const proc = this.pool.worker(slot);
      if (proc) this.pool.send(proc, { type: 'pool-view', slotCount: count, ready, pids, ...(full === undefined ? {} : { full }) }, undefined, ignoreError);
    }
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

function dropBytes(): void {
  // A refused client's further bytes are read only to be dropped (see REFUSAL_LINGER_MS).
}


function ignoreError(): void {
  // Client resets are normal; the 'close' that follows does the bookkeeping.
}
