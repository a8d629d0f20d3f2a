import net, { type AddressInfo, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { MasterMetrics } from '../admin/metrics.js';
import type { ResolvedConfig } from '../config/load.js';
import type { ConnectionInfo } from '../connection-info.js';
import type { ErrorCode } from '../errors.js';
import { CidrList, canonicalIp } from '../ip/address.js';
import { deriveKey, type KeyRules } from '../key/derive.js';
import { realClientAddress, truncateForLog } from '../inspect/client.js';
import { refusalBytes } from '../inspect/response.js';
import { compileInspector, type Inspector, type Refusal } from '../inspect/rules.js';
import type { WorkerPool, WorkerProc } from '../pool/pool.js';
import type { WorkerMessage } from '../pool/messages.js';
import { parseRequestHead, type RequestHead } from '../protocol/http1.js';
import { parseProxyHeader, type ProxyEndpoint, type ProxyHeader } from '../protocol/proxy.js';
import { hashKey } from '../ring/farmhash.js';
import { LogLimiter } from './log-limiter.js';
import { stopReading } from './stop-reading.js';

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

/** How often a connection that found no ready worker looks again (bounded by peekTimeoutMs). */
const NO_WORKER_RETRY_MS = 25;

/** A connection handed to a worker and not yet acknowledged. */
interface PendingHandoff {
  readonly socket: Socket;
  readonly bytes: Buffer;
  readonly info: ConnectionInfo;
  readonly keyHash: number;
  readonly acceptedAt: bigint;
  readonly peer: string;
  proc: WorkerProc;
  /** Slots already tried (re-routes skip them). */
  readonly tried: number[];
}

/** Where the master is with one connection it is still reading. */
interface Peek {
  readonly socket: Socket;
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
  private readonly logLimiter = new LogLimiter();
  /** Connections the master holds: peeking or in flight to a worker. */
  private held = 0;
  private nextId = 1;
  /** A PROXY v2 header may not be longer than what the master is willing to peek. */
  private readonly proxyOptions: { readonly maxBytes: number };
  /** Whether the first request head is needed to decide (cookie or forwarded in key.order). */
  private readonly headMatters: boolean;
  /** The inspect rules (issue 7), or null: no section, no cost. */
  private readonly inspector: Inspector | null;

  constructor(
    private readonly config: ResolvedConfig,
    private readonly pool: WorkerPool,
    private readonly log: Logger,
    private readonly metrics: MasterMetrics,
  ) {
    this.trusted = CidrList.parse(config.proxyProtocol.trustedFrom);
    this.rules = config.key;
    this.proxyOptions = { maxBytes: config.limits.peekBytes };
    this.headMatters = config.key.order.some((source) => source === 'cookie' || source === 'forwarded');
    this.inspector = config.inspect ? compileInspector(config.inspect) : null;
    // pauseOnConnect: not one byte is read before we attach our listener and
    // decide to resume, so nothing can be read into a void.
    this.server = net.createServer({ pauseOnConnect: true, noDelay: true }, (socket) => this.onConnection(socket));
    this.server.on('error', (error) => this.log.error({ err: error.message }, 'listener error'));
  }

  /** Starts listening; resolves with the bound address. */
  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.server.once('error', onError);
      this.server.listen({ host: this.config.listen.host, port: this.config.listen.port, backlog: 4096 }, () => {
        this.server.removeListener('error', onError);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** Stops accepting. Connections already held are still handed off. */
  close(): Promise<void> {
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

  private onConnection(socket: Socket): void {
    const acceptedAt = process.hrtime.bigint();
    // A client can reset at any moment; an unhandled 'error' would crash the master.
    socket.on('error', ignoreError);
    const peer = canonicalIp(socket.remoteAddress ?? '') ?? '';
    const max = this.config.limits.maxConnections;
    if (max !== undefined && this.held + this.pool.activeConnections() >= max) {
      this.refuse(socket, peer, 'ERR_MAX_CONNECTIONS');
      return;
    }
    const peerTrusted = peer !== '' && this.trusted.contains(peer);
    const mode = this.config.proxyProtocol.mode;
    if (mode === 'required' && !peerTrusted) {
      // No header this peer could send would be honoured: close before reading a byte.
      this.refuse(socket, peer, 'ERR_PROXY_UNTRUSTED');
      return;
    }
    this.held++;
    this.metrics.peeking.inc();
    const peek: Peek = {
      socket,
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
    socket.on('data', peek.onData);
    socket.once('close', () => this.onPeekClose(peek));
    socket.resume();
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
    if (peek.timer) clearTimeout(peek.timer);
    peek.timer = null;
    this.held--;
    this.metrics.peeking.dec();
    return true;
  }

  private refusePeek(peek: Peek, code: ErrorCode): void {
    if (!this.endPeek(peek)) return;
    stopReading(peek.socket, peek.onData);
    this.refuse(peek.socket, peek.peer, code);
  }

  /** Closes a connection without writing a byte; logged (rate-limited) and counted. */
  private refuse(socket: Socket, peer: string, code: ErrorCode): void {
    this.metrics.refused.inc({ reason: code });
    const suppressed = this.logLimiter.admit(code);
    if (suppressed >= 0) this.log.warn({ client: peer, reason: code, suppressed }, 'connection refused');
    socket.destroy();
  }

  private decide(peek: Peek, head: RequestHead | null): void {
    if (!this.endPeek(peek)) return;
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
    stopReading(peek.socket, peek.onData);
    const proxySource = peek.proxy?.command === 'PROXY' ? (peek.proxy.source?.address ?? null) : null;
    let clientKey;
    try {
      clientKey = deriveKey({ head, proxySource, peerAddress: peek.peer, peerTrusted: peek.peerTrusted }, this.rules);
    } catch (error) {
      // deriveKey is total; this is a last line of defence for the master's event loop.
      this.log.error({ client: peek.peer, err: (error as Error).message }, 'key derivation failed');
      clientKey = { key: peek.peer, source: 'remote' as const };
    }
    const keyHash = hashKey(clientKey.key);
    const info: ConnectionInfo = {
      key: clientKey.key,
      keySource: clientKey.source,
      worker: -1,
      proxy: peek.proxy && { source: canonicalEndpoint(peek.proxy.source), destination: canonicalEndpoint(peek.proxy.destination), tlvs: peek.proxy.tlvs },
    };
    const bytes = peek.buffered === null ? EMPTY : peek.offset === 0 ? peek.buffered : peek.buffered.subarray(peek.offset);
    peek.buffered = null;
    this.held++;
    this.route({ socket: peek.socket, bytes, info, keyHash, acceptedAt: peek.acceptedAt, peer: proxySource ?? peek.peer, proc: null as never, tried: [] }, null, Date.now());
  }

  /**
   * Answers a refused first request itself: the app never sees the connection.
   * Logged (rate-limited per rule) with the real client address, counted exactly.
   */
  private refuseRequest(peek: Peek, head: RequestHead, refusal: Refusal): void {
    const socket = peek.socket;
    socket.removeListener('data', peek.onData);
    socket.on('data', dropBytes);
    peek.buffered = null;
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
    // Writing is fine on a socket the peek has read from; then a bounded lingering close.
    const linger = setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS);
    socket.once('close', () => clearTimeout(linger));
    socket.end(refusalBytes(refusal, head.method === 'HEAD'));
  }

  /** Sends a held connection to the best eligible worker; waits briefly if none is ready. */
  private route(handoff: PendingHandoff, fallbackReason: string | null, firstTry: number): void {
    if (handoff.socket.destroyed) {
      this.held--;
      return;
    }
    // The key's first choice among ready slots it was not already sent to (its
    // next choice when that slot is empty, dead or over the load bound).
    const choice = this.pool.choose(handoff.keyHash, handoff.tried);
    const slot = choice.slot;
    fallbackReason ??= choice.fallback;
    if (slot === -1) {
      if (Date.now() - firstTry >= this.config.limits.peekTimeoutMs) {
        this.held--;
        this.refuse(handoff.socket, handoff.peer, 'ERR_NO_WORKER');
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
    this.pool.send(proc, { type: 'connection', id, bytes: handoff.bytes, info }, handoff.socket, (error) => {
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
    pending.socket.destroy();
    this.metrics.handoffs.inc({ worker: String(proc.slot), key_source: pending.info.keySource });
    this.metrics.handoffSeconds.observe(Number(process.hrtime.bigint() - pending.acceptedAt) / 1e9);
  }

  /** A worker is gone: whatever it had not acknowledged goes to the next choice. */
  onExit(proc: WorkerProc): void {
    for (const [id, pending] of this.pending) if (pending.proc === proc) this.reroute(id, 'worker-exit');
  }

  /** A worker handed a connection back for re-routing. */
  onHandback(_proc: WorkerProc, _message: Extract<WorkerMessage, { type: 'handback' }>, socket: Socket | undefined): void {
    socket?.destroy();
  }
}

const EMPTY = Buffer.alloc(0);

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
