import type net from 'node:net';
import { Counter } from 'prom-client';
import { CONNECTION_INFO, type ConnectionInfo } from '../../shared/connection-info.js';
import { mayCarryOtherClients } from '../../shared/key/reuse.js';
import { sawEof, stopSocketReads } from '../../node/socket.js';
import { parseRequestHead } from '../../shared/protocol/http1.js';
import { firstRequestCloses, newChunkedState, requestFraming, scanChunked, type ChunkedState } from '../../shared/protocol/http1-framing.js';
import { workerRegistry } from '../metrics.js';
import type { ReuseContext } from './context.js';
import { destination, handbackKeyOf, withKeyOf, type Destination } from './destination.js';
import { handedBack, offWorkerRequests } from './metrics.js';
import { StandInSocket, writeChunk, type OutChunk, type StandInOwner } from './stand-in-socket.js';

/**
 * key.reuse in the worker runtime: requests on a reused connection
 * (an HTTP-mode balancer pools its backend connections and sends requests of
 * many clients down each) whose key belongs to another worker.
 *
 * "handback": the runtime owns the framing of such connections. It reads the
 * socket itself, finds each request's end (src/shared/protocol/http1-framing.ts) and
 * feeds the app's http server one request at a time through an in-memory
 * Duplex (a {@link StandInSocket}) that stands in for the socket, so Node's parser
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

/** Connections taken out of per-request framing (upgrade, CONNECT, or bytes the framer refuses). */
const passthroughs = new Counter({
  name: 'sticky_worker_reuse_passthrough_total',
  help: 'Reused connections whose later requests stay on their worker: an Upgrade/CONNECT, or framing the runtime would not guess (reason)',
  labelNames: ['reason'] as const,
  registers: [workerRegistry],
});

type Phase = 'head' | 'body-length' | 'body-chunked' | 'passthrough' | 'gone';

/** One handed-off connection under per-request framing. */
class ReusedConnection implements StandInOwner {
  private readonly standIn: StandInSocket;
  /** The app sees the client socket's own addresses. */
  readonly endpoints: net.Socket;
  /** Read from the socket and neither fed nor handed back, from a boundary on (in 'head'). */
  private unfed: Buffer = EMPTY;
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
  private standInFull = false;
  private headTimer: NodeJS.Timeout | null = null;

  private readonly onData = (chunk: Buffer): void => {
    this.unfed = this.unfed.length === 0 ? chunk : Buffer.concat([this.unfed, chunk]);
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
    this.standIn.destroy();
  };
  private readonly onTimeout = (): void => {
    this.standIn.emit('timeout');
  };

  constructor(
    readonly socket: net.Socket,
    private info: ConnectionInfo,
    private readonly ctx: ReuseContext,
  ) {
    this.endpoints = socket;
    this.standIn = new StandInSocket(this);
    (this.standIn as unknown as Record<symbol, unknown>)[CONNECTION_INFO] = info;
  }

  /** Starts with the bytes the master read (the first request's head, at least). */
  start(bytes: Buffer): void {
    this.unfed = bytes;
    const socket = this.socket;
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
    socket.on('timeout', this.onTimeout);
    socket.on('error', ignore);
    this.ctx.server().emit('connection', this.standIn);
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
          if (this.unfed.length === 0) return this.updateFlow();
          const take = Math.min(this.bodyRemaining, this.unfed.length);
          this.feed(this.unfed.subarray(0, take));
          this.unfed = this.unfed.subarray(take);
          this.bodyRemaining -= take;
          if (this.bodyRemaining === 0) this.phase = 'head';
          continue;
        }
        case 'body-chunked': {
          if (this.unfed.length === 0) return this.updateFlow();
          const scan = scanChunked(this.chunked as ChunkedState, this.unfed, 0);
          if (scan.kind === 'error') {
            this.enterPassthrough(scan.code);
            continue;
          }
          const take = scan.kind === 'done' ? scan.consumed : this.unfed.length;
          this.feed(this.unfed.subarray(0, take));
          this.unfed = this.unfed.subarray(take);
          if (scan.kind === 'done') this.phase = 'head';
          continue;
        }
        case 'passthrough':
          if (this.unfed.length > 0) {
            this.feed(this.unfed);
            this.unfed = EMPTY;
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
    if (this.standIn.writableEnded || this.standIn.destroyed) {
      this.unfed = EMPTY;
      return false;
    }
    if (this.unfed.length === 0) {
      if (this.clientEnded) this.feedEnd();
      return false;
    }
    const parsed = parseRequestHead(this.unfed, 0, this.ctx.maxHeadBytes);
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
    const framing = requestFraming(this.unfed, 0, headLength, head);
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
        (this.standIn as unknown as Record<symbol, unknown>)[CONNECTION_INFO] = info;
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
    this.feed(this.unfed.subarray(0, headLength));
    this.unfed = this.unfed.subarray(headLength);
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
    if (bytes.length > 0 && !this.standIn.push(bytes)) this.standInFull = true;
  }

  private feedEnd(): void {
    if (this.endFed) return;
    this.endFed = true;
    this.standIn.push(null);
  }

  /** Reads from the socket only while the app's server keeps up and little is buffered ahead. */
  private updateFlow(): void {
    if (this.handingBack || this.phase === 'gone') return;
    const read = !this.standInFull && this.unfed.length < MAX_READ_AHEAD_BYTES;
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
      if (this.answered === this.fed && !this.standIn.writableEnded) this.socket.end(REQUEST_TIMEOUT_RESPONSE);
      else this.socket.destroy();
      this.standIn.destroy();
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
    // Later in this tick the server may end the stand-in (a last response); decide after it.
    if (this.answered === this.fed && this.phase === 'head' && this.unfed.length > 0) process.nextTick(() => this.advance());
  }

  onStandInRead(): void {
    this.standInFull = false;
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
  onStandInFinal(): void {
    if (!this.handingBack) this.socket.end();
  }

  /** The app's server destroyed the stand-in (error, timeout) or the client left. */
  onStandInDestroy(): void {
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
    const taken = takeSocketBack(socket, this.unfed, EMPTY, this.onData);
    if (taken === null) {
      // The client half-closed meanwhile: the FIN is consumed here, so the
      // connection cannot move. Serve the rest here (counted).
      this.handingBack = false;
      this.clientEnded = true;
      this.advance();
      return;
    }
    this.unfed = taken;
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
    // The server lets go of the stand-in (its parser is freed); the socket is ours.
    this.standIn.destroy();
    handedBack.inc();
    const bytes = this.unfed;
    this.unfed = EMPTY;
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
