import type http from 'node:http';
import type net from 'node:net';
import { Counter } from 'prom-client';
import { CONNECTION_INFO, connectionInfo, type ConnectionInfo } from '../../shared/connection-info.js';
import { deriveKey, type ClientKey, type KeyContext, type KeyRules } from '../../shared/key/derive.js';
import { mayCarryOtherClients, type ReuseMode } from '../../shared/key/reuse.js';
import { readStickyCookie, type StickyCookieRules } from '../../shared/key/sticky-cookie.js';
import { sawEof, stopSocketReads } from '../../node/socket.js';
import type { HandbackKey } from '../../shared/wire/fd-batch.js';
import { parseRequestHead, type RequestHead } from '../../shared/protocol/http1.js';
import { firstRequestCloses, newChunkedState, requestFraming, scanChunked, type ChunkedState } from '../../shared/protocol/http1-framing.js';
import { hashKey } from '../../shared/ring/farmhash.js';
import { placeKey, type PlacementView } from '../../shared/placement.js';
import type { RequestHook } from '../request-hooks.js';
import { Segment, writeChunk, type OutChunk, type SegmentOwner } from './segment.js';
import { workerRegistry } from '../metrics.js';

/**
 * key.reuse in the worker runtime: requests on a reused connection
 * (an HTTP-mode balancer pools its backend connections and sends requests of
 * many clients down each) whose key belongs to another worker.
 *
 * "handback": the runtime owns the framing of such connections. It reads the
 * socket itself, finds each request's end (src/shared/protocol/http1-framing.ts) and
 * feeds the app's http server one request at a time through an in-memory
 * Duplex (a {@link Segment}) that stands in for the socket, so Node's parser
 * never reads ahead of a request boundary. When the next request's key belongs
 * to another slot, it stops reading the socket, waits until every response so
 * far is written, and hands the socket plus every byte it has read and not fed
 * (starting at that request) back to the master, which routes it like a new
 * connection. The client's connection stays open; no byte is lost, none is
 * reordered.
 *
 * Invariants that make it byte-exact:
 * - bytes go to the app's server only up to a boundary the framer is sure of
 *   (or, after anything it cannot frame, all of them: "passthrough", where the
 *   connection stays here and is only lost to re-routing, never corrupted);
 * - a hand-back happens only at a boundary, with the socket's reads stopped in
 *   the same tick as the decision (src/node/socket.ts stopSocketReads) and what was
 *   already buffered in the socket drained into the bytes sent;
 * - the first request of every hand-off is served where the master sent it, so
 *   a connection can never bounce between master and workers.
 */

/** Most bytes read ahead of the request being served before the socket is paused. */
const MAX_READ_AHEAD_BYTES = 64 * 1024;

/** Requests answered by another worker than their key's (must stay 0 unless key.reuse is "off"). */
export const offWorkerRequests = new Counter({
  name: 'sticky_worker_requests_off_worker_total',
  help: "Requests on reused connections served by another worker than their key's (0 unless key.reuse is off)",
  registers: [workerRegistry],
});

/** Requests after which a reused connection was handed back to the master. */
export const handedBack = new Counter({
  name: 'sticky_worker_handbacks_total',
  help: 'Reused connections the workers handed back to the master because the next request belongs to another worker',
  registers: [workerRegistry],
});

/** Connections taken out of per-request framing (upgrade, CONNECT, or bytes the framer refuses). */
const passthroughs = new Counter({
  name: 'sticky_worker_reuse_passthrough_total',
  help: 'Reused connections whose later requests stay on their worker: an Upgrade/CONNECT, or framing the runtime would not guess (reason)',
  labelNames: ['reason'] as const,
  registers: [workerRegistry],
});

/** Sticky cookies the workers ignored on later requests of reused connections. */
export const stickyRejectedInWorker = new Counter({
  name: 'sticky_worker_cookie_rejected_total',
  help: 'Sticky cookies ignored by the workers (later requests on reused connections), by reason: malformed, forged, stale',
  labelNames: ['reason'] as const,
  registers: [workerRegistry],
});

/** The master's pool as last announced (`pool-view`); null until the first one. */
let poolView: (PlacementView & { readonly pids: readonly number[] }) | null = null;

/**
 * Takes the master's `pool-view` message (`pids`: each ready slot's worker,
 * for its link; `full`: the slots at the load bound, with balanceFactor).
 */
export function setPoolView(slotCount: number, ready: readonly number[], pids: readonly number[] = [], full?: readonly number[]): void {
  poolView = { slotCount, ready: Uint8Array.from(ready), pids, full: full === undefined ? undefined : Uint8Array.from(full) };
}

/** The pid of a ready slot's worker (its link's name), or 0. */
export function readyPid(slot: number): number {
  const view = poolView;
  if (view === null || slot < 0 || slot >= view.slotCount || view.ready[slot] !== 1) return 0;
  return view.pids[slot] ?? 0;
}

/** What the reuse code needs from the runtime. */
export interface ReuseContext {
  readonly slot: number;
  readonly rules: KeyRules;
  readonly stickyCookie: StickyCookieRules | undefined;
  /** The largest request head framed (bigger ones go to the app's server, which answers 431). */
  readonly maxHeadBytes: number;
  /** A partial head waiting longer than this closes the connection (as the master's peek does). */
  readonly headTimeoutMs: number;
  /** The app's server (fed with the {@link Segment}). */
  readonly server: () => net.Server;
  /**
   * Hands the connection to the master with the bytes it has not served and
   * where its next request belongs; `done` once it is on its way (or failed).
   */
  readonly handBack: (socket: net.Socket, bytes: Buffer, info: ConnectionInfo, next: HandbackKey, done: (error: Error | null) => void) => void;
}

/** Where a request belongs. */
export interface Destination {
  readonly key: ClientKey;
  /** The slot a valid sticky cookie names, or -1. */
  readonly stickySlot: number;
  /** This worker's slot when the request is its own. */
  readonly slot: number;
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/**
 * Where a request with this head belongs: the master's own decision
 * (src/shared/placement.ts) over the pool view it last sent, with the slot of
 * a valid sticky cookie pinned. Without a pool view yet: this slot exactly
 * when the key is the connection's (the master decides otherwise).
 */
export function destination(head: RequestHead, info: ConnectionInfo, ctx: ReuseContext): Destination {
  const keyContext: KeyContext = {
    head,
    proxySource: info.proxy?.source?.address ?? null,
    peerAddress: info.peer ?? '',
    peerTrusted: info.peerTrusted === true,
  };
  const key = deriveKey(keyContext, ctx.rules);
  const view = poolView;
  let stickySlot = -1;
  if (ctx.stickyCookie !== undefined) {
    const verdict = readStickyCookie(head.cookie, nowSeconds(), ctx.stickyCookie);
    if (verdict.kind === 'invalid') stickyRejectedInWorker.inc({ reason: verdict.reason });
    else if (verdict.kind === 'valid' && (view === null || (verdict.slot < view.slotCount && view.ready[verdict.slot] === 1))) stickySlot = verdict.slot;
  }
  let slot: number;
  if (view !== null) slot = placeKey(hashKey(key.key), view, undefined, stickySlot).slot;
  else slot = stickySlot !== -1 ? stickySlot : key.key === info.key ? ctx.slot : -1;
  return { key, stickySlot, slot };
}

/** Where the master routes a connection handed back for a request going to `to`. */
export function handbackKeyOf(to: Destination): HandbackKey {
  return { key: to.key.key, keySource: to.key.source, ...(to.stickySlot === -1 ? {} : { stickySlot: to.stickySlot }) };
}

/** `info` with the key and key source of a request going to `to` (`info` itself when they are the same). */
export function withKeyOf(info: ConnectionInfo, to: Destination): ConnectionInfo {
  const keySource = to.stickySlot === -1 ? to.key.source : 'sticky';
  return to.key.key === info.key && keySource === info.keySource ? info : { ...info, key: to.key.key, keySource };
}

type Phase = 'head' | 'body-length' | 'body-chunked' | 'passthrough' | 'gone';

/** One handed-off connection under per-request framing. */
class ReusedConnection implements SegmentOwner {
  private readonly segment: Segment;
  /** The app sees the client socket's own addresses. */
  readonly endpoints: net.Socket;
  /** Read from the socket and neither fed nor handed back, from a boundary on (in 'head'). */
  private pending: Buffer = EMPTY;
  private phase: Phase = 'head';
  private bodyRemaining = 0;
  private chunked: ChunkedState | null = null;
  /** Request heads fed to the app's server, and responses it has finished. */
  private fed = 0;
  private answered = 0;
  /** Real socket writes not yet called back (a hand-back waits for 0). */
  private writesInFlight = 0;
  private onFlushed: (() => void) | null = null;
  private clientEnded = false;
  private endFed = false;
  private handingBack = false;
  /** The app's server reads no more for now (push returned false). */
  private segmentFull = false;
  private headTimer: NodeJS.Timeout | null = null;

  private readonly onData = (chunk: Buffer): void => {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    this.advance();
  };
  private readonly onEnd = (): void => {
    this.clientEnded = true;
    this.advance();
  };
  private readonly onClose = (): void => {
    if (this.handingBack) return;
    this.phase = 'gone';
    this.clearHeadTimer();
    this.segment.destroy();
  };
  private readonly onTimeout = (): void => {
    this.segment.emit('timeout');
  };

  constructor(
    readonly socket: net.Socket,
    private info: ConnectionInfo,
    private readonly ctx: ReuseContext,
  ) {
    this.endpoints = socket;
    this.segment = new Segment(this);
    (this.segment as unknown as Record<symbol, unknown>)[CONNECTION_INFO] = info;
  }

  /** Starts with the bytes the master read (the first request's head, at least). */
  start(bytes: Buffer): void {
    this.pending = bytes;
    const socket = this.socket;
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
    socket.on('timeout', this.onTimeout);
    socket.on('error', ignore);
    this.ctx.server().emit('connection', this.segment);
    this.advance();
  }

  /** Feeds what can be fed, up to the next decision. */
  private advance(): void {
    for (;;) {
      if (this.handingBack) return;
      switch (this.phase) {
        case 'gone':
          return;
        case 'head':
          if (!this.atBoundary()) {
            this.updateFlow();
            return;
          }
          continue;
        case 'body-length': {
          if (this.pending.length === 0) return this.updateFlow();
          const take = Math.min(this.bodyRemaining, this.pending.length);
          this.feed(this.pending.subarray(0, take));
          this.pending = this.pending.subarray(take);
          this.bodyRemaining -= take;
          if (this.bodyRemaining === 0) this.phase = 'head';
          continue;
        }
        case 'body-chunked': {
          if (this.pending.length === 0) return this.updateFlow();
          const scan = scanChunked(this.chunked as ChunkedState, this.pending, 0);
          if (scan.kind === 'error') {
            this.enterPassthrough(scan.code);
            continue;
          }
          const take = scan.kind === 'done' ? scan.consumed : this.pending.length;
          this.feed(this.pending.subarray(0, take));
          this.pending = this.pending.subarray(take);
          if (scan.kind === 'done') this.phase = 'head';
          continue;
        }
        case 'passthrough':
          if (this.pending.length > 0) {
            this.feed(this.pending);
            this.pending = EMPTY;
          }
          if (this.clientEnded) this.feedEnd();
          return this.updateFlow();
      }
    }
  }

  /**
   * At a request boundary: decides the next request. Returns true when it fed
   * a head (the caller goes on with its body), false when it must wait (for
   * bytes, or for responses before a hand-back) or handed the connection back.
   */
  private atBoundary(): boolean {
    // The server closes after this response (Connection: close, HTTP/1.0):
    // later bytes would not be read by it either.
    if (this.segment.writableEnded || this.segment.destroyed) {
      this.pending = EMPTY;
      return false;
    }
    if (this.pending.length === 0) {
      if (this.clientEnded) this.feedEnd();
      return false;
    }
    const parsed = parseRequestHead(this.pending, 0, this.ctx.maxHeadBytes);
    if (parsed.kind === 'need-more') {
      if (this.clientEnded) this.enterPassthrough('ERR_HTTP_TRUNCATED');
      else this.armHeadTimer();
      return this.phase === 'passthrough';
    }
    this.clearHeadTimer();
    if (parsed.kind === 'error') {
      // The server answers it (400, 431) exactly as without key.reuse.
      this.enterPassthrough(parsed.code);
      return true;
    }
    const head = parsed.value;
    const headLength = parsed.consumed;
    const framing = requestFraming(this.pending, 0, headLength, head);
    if (this.fed > 0) {
      const to = destination(head, this.info, this.ctx);
      if (to.slot !== this.ctx.slot) {
        // Another worker: every response so far must be complete first.
        if (this.answered !== this.fed) return false;
        if (!this.clientEnded) {
          this.handBack(to);
          return false;
        }
        // A half-closed client cannot be handed on (its FIN is already read here): served here, counted.
        offWorkerRequests.inc();
      }
      // Served here: the app sees this request's key.
      const info = withKeyOf(this.info, to);
      if (info !== this.info) {
        this.info = info;
        (this.segment as unknown as Record<symbol, unknown>)[CONNECTION_INFO] = info;
      }
    }
    if (framing.kind === 'opaque') {
      this.enterPassthrough('upgrade');
      return true;
    }
    if (framing.kind === 'error') {
      this.enterPassthrough(framing.code);
      return true;
    }
    this.feed(this.pending.subarray(0, headLength));
    this.pending = this.pending.subarray(headLength);
    this.fed++;
    if (framing.kind === 'chunked') {
      this.phase = 'body-chunked';
      this.chunked = newChunkedState();
    } else if (framing.length > 0) {
      this.phase = 'body-length';
      this.bodyRemaining = framing.length;
    }
    return true;
  }

  /** From now on every byte goes to the app's server: no more per-request decisions here. */
  private enterPassthrough(reason: string): void {
    passthroughs.inc({ reason });
    this.clearHeadTimer();
    this.phase = 'passthrough';
  }

  private feed(bytes: Buffer): void {
    if (bytes.length > 0 && !this.segment.push(bytes)) this.segmentFull = true;
  }

  private feedEnd(): void {
    if (this.endFed) return;
    this.endFed = true;
    this.segment.push(null);
  }

  /** Reads from the socket only while the app's server keeps up and little is buffered ahead. */
  private updateFlow(): void {
    if (this.handingBack || this.phase === 'gone') return;
    const read = !this.segmentFull && this.pending.length < MAX_READ_AHEAD_BYTES;
    if (read && this.socket.isPaused()) this.socket.resume();
    else if (!read && !this.socket.isPaused()) this.socket.pause();
  }

  private armHeadTimer(): void {
    if (this.headTimer !== null) return;
    this.headTimer = setTimeout(() => {
      // A head unfinished after headersTimeoutMs: answered as Node's own
      // headersTimeout would (the same 408 bytes, lib/_http_server.js), since
      // Node's checker never sees a head the runtime has not fed it.
      this.headTimer = null;
      this.phase = 'gone';
      if (this.answered === this.fed && !this.segment.writableEnded) this.socket.end(REQUEST_TIMEOUT_RESPONSE);
      else this.socket.destroy();
      this.segment.destroy();
    }, this.ctx.headTimeoutMs);
    this.headTimer.unref();
  }

  private clearHeadTimer(): void {
    if (this.headTimer === null) return;
    clearTimeout(this.headTimer);
    this.headTimer = null;
  }

  /** The app's server finished a response (every byte of it written to the socket). */
  onResponseDone(): void {
    this.answered++;
    // Later in this tick the server may end the segment (a last response); decide after it.
    if (this.answered === this.fed && this.phase === 'head' && this.pending.length > 0) process.nextTick(() => this.advance());
  }

  onSegmentRead(): void {
    this.segmentFull = false;
    this.updateFlow();
  }

  /**
   * Writes the app's bytes to the client; `done` once the socket took them
   * (a hand-back waits for all).
   */
  writeOut(chunks: OutChunk[], done: (error?: Error | null) => void): void {
    this.writesInFlight++;
    const socket = this.socket;
    if (chunks.length > 1) socket.cork();
    for (let i = 0; i < chunks.length - 1; i++) writeChunk(socket, chunks[i] as OutChunk);
    writeChunk(socket, chunks[chunks.length - 1] as OutChunk, (error) => {
      this.writesInFlight--;
      done(error ?? null);
      if (this.writesInFlight === 0 && this.onFlushed !== null) {
        const flushed = this.onFlushed;
        this.onFlushed = null;
        flushed();
      }
    });
    if (chunks.length > 1) socket.uncork();
  }

  /** The app's server ended its side (it closes the connection after a response). */
  onSegmentFinal(): void {
    if (!this.handingBack) this.socket.end();
  }

  /** The app's server destroyed the segment (error, timeout) or the client left. */
  onSegmentDestroy(): void {
    if (this.handingBack) return;
    this.phase = 'gone';
    this.clearHeadTimer();
    // Whatever the server wrote last (a 400, a 408) goes out before the close.
    if (!this.socket.destroyed) this.socket.destroySoon();
  }

  /**
   * Gives the connection back to the master: reads stopped now (same tick as
   * the decision), the bytes already buffered in the socket appended to the
   * pending ones, then, once every response byte has been written, the handle
   * goes with those bytes. The master's copy of the descriptor is the
   * connection from then on; this one is closed by Node after the send.
   */
  private handBack(to: Destination): void {
    this.handingBack = true;
    this.clearHeadTimer();
    const socket = this.socket;
    const taken = takeSocketBack(socket, this.pending, EMPTY, this.onData);
    if (taken === null) {
      // The client half-closed meanwhile: the FIN is consumed here, so the
      // connection cannot move. Serve the rest here (counted).
      this.handingBack = false;
      this.clientEnded = true;
      this.advance();
      return;
    }
    this.pending = taken;
    const send = (): void => this.sendBack(to);
    if (this.writesInFlight === 0) send();
    else this.onFlushed = send;
  }

  private sendBack(to: Destination): void {
    const socket = this.socket;
    socket.removeListener('end', this.onEnd);
    socket.removeListener('close', this.onClose);
    socket.removeListener('timeout', this.onTimeout);
    socket.setTimeout(0);
    // The server lets go of the segment (its parser is freed); the socket is ours.
    this.segment.destroy();
    handedBack.inc();
    const bytes = this.pending;
    this.pending = EMPTY;
    const next = handbackKeyOf(to);
    this.ctx.handBack(socket, bytes, this.info, next, () => {
      // Sent: the master has (or will have) its own descriptor; this process's
      // copy goes. Not sent (the master is gone): this closes the connection.
      // Either way 'close' does the bookkeeping.
      socket.destroy();
    });
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * Stops a socket's reads now (same tick as the decision to hand it back,
 * src/node/socket.ts stopSocketReads) and returns `first` + `second` + every byte the
 * stream had buffered, or null when the client half-closed meanwhile: its FIN
 * is consumed here, so the connection can no longer move.
 */
export function takeSocketBack(socket: net.Socket, first: Buffer, second: Buffer, onData: (chunk: Buffer) => void = ignore): Buffer | null {
  stopSocketReads(socket, onData);
  // Bytes libuv delivered before readStop sit in the stream's buffer; take
  // them (with `_read` neutralised, read() cannot start the handle again).
  const buffered: Buffer[] = [first, second];
  for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) buffered.push(chunk);
  if (sawEof(socket)) return null;
  return second.length === 0 && buffered.length === 2 ? first : Buffer.concat(buffered);
}

/** What Node's http server writes when headersTimeout fires (lib/_http_server.js requestTimeoutResponse). */
const REQUEST_TIMEOUT_RESPONSE = Buffer.from('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n', 'ascii');

function ignore(): void {
  // Errors on a socket that is closing anyway; 'close' does the bookkeeping.
}

/**
 * key.reuse "handback": takes over connections that may carry other clients'
 * requests ({@link mayCarryOtherClients}); every other connection keeps the
 * plain path (the app's server reads the socket itself).
 */
export function handbackConnectionHook(ctx: ReuseContext): (socket: net.Socket, bytes: Buffer, info: ConnectionInfo) => boolean {
  const sticky = ctx.stickyCookie !== undefined;
  return (socket, bytes, info) => {
    // A first request that closes the connection leaves no later request to look at.
    if (!mayCarryOtherClients(info, ctx.rules.order, sticky) || firstRequestCloses(bytes)) return false;
    new ReusedConnection(socket, info, ctx).start(bytes);
    return true;
  };
}

/**
 * key.reuse "close": every response on a connection that may carry other
 * clients' requests says `Connection: close`, so the proxy opens a fresh
 * connection, decided by the master, for its next request.
 */
export function closeRequestHook(rules: KeyRules, stickyCookie: boolean): RequestHook {
  return (req, res) => {
    // HTTP/2 has no Connection header (RFC 9113 8.2.2); its streams are not this case.
    if (req.httpVersionMajor !== 1) return false;
    const info = connectionInfo(req.socket);
    if (info !== null && mayCarryOtherClients(info, rules.order, stickyCookie)) {
      res.shouldKeepAlive = false;
      res.setHeader('connection', 'close');
    }
    return false;
  };
}

/** Set on a client socket by the "off" hook after its first request. */
const OFF_SEEN = Symbol('sticky.off-seen');

/**
 * key.reuse "off": nothing changes, but requests after the first on a
 * connection that may carry other clients' requests are checked and counted
 * when their key belongs to another worker (how much "off" misroutes).
 */
export function offRequestHook(ctx: ReuseContext): RequestHook {
  const sticky = ctx.stickyCookie !== undefined;
  return (req) => {
    const info = connectionInfo(req.socket);
    if (info === null || !mayCarryOtherClients(info, ctx.rules.order, sticky)) return false;
    // Marked on the socket itself: a WeakMap entry per connection costs new connections their rate (src/worker/reuse/forward.ts).
    const holder = req.socket as unknown as Record<symbol, true | undefined>;
    if (holder[OFF_SEEN] !== true) {
      holder[OFF_SEEN] = true;
      return false;
    }
    if (destination(headOfRequest(req), info, ctx).slot !== ctx.slot) offWorkerRequests.inc();
    return false;
  };
}

/** The fields of a request Node parsed that key derivation reads (as parseRequestHead gives them). */
export function headOfRequest(req: http.IncomingMessage): RequestHead {
  const headers = req.headers;
  return {
    method: req.method ?? 'GET',
    target: req.url ?? '/',
    version: req.httpVersion === '1.0' ? '1.0' : '1.1',
    host: headers.host,
    cookie: headers.cookie,
    forwardedFor: headerList(headers['x-forwarded-for']),
    forwarded: headerList(headers.forwarded),
    upgrade: headers.upgrade,
  };
}

function headerList(value: string | string[] | undefined): readonly string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/**
 * The hooks for a key.reuse mode other than "forward" (src/worker/reuse/forward.ts);
 * "handback" needs no request hook: the connection hook does it all.
 */
export function reuseHooks(mode: Exclude<ReuseMode, 'forward'>, ctx: ReuseContext): { connection: ReturnType<typeof handbackConnectionHook> | null; request: RequestHook | null } {
  switch (mode) {
    case 'handback':
      return { connection: handbackConnectionHook(ctx), request: null };
    case 'close':
      return { connection: null, request: closeRequestHook(ctx.rules, ctx.stickyCookie !== undefined) };
    case 'off':
      return { connection: null, request: offRequestHook(ctx) };
  }
}
