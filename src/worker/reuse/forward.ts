import type http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { CONNECTION_INFO, type ConnectionInfo } from '../../shared/connection-info.js';
import { mayCarryOtherClients } from '../../shared/key/reuse.js';
import type { FrontStream, LinkPool, StreamUser } from '../link/front.js';
import type { RequestHook, UpgradeHook } from '../request-hooks.js';
import { Counter } from 'prom-client';
import { headOfRequest } from '../request-head.js';
import type { ReuseContext } from './context.js';
import { destination, handbackKeyOf, readyPid, withKeyOf, type Destination } from './destination.js';
import { takeSocketBack } from './handback.js';
import { handedBack, offWorkerRequests } from './metrics.js';
import { workerRegistry } from '../metrics.js';
import { closeAfter, headWritten, responseInProgress, sentContinue, writeRelayed } from '../../node/outgoing.js';

/**
 * key.reuse "forward" at the level of requests. The client
 * connection stays on the plain path: the app's http server reads the socket
 * itself and parses every request in C++ (`parser.consume`), exactly as without
 * key.reuse. A hook in front of the app derives each later request's key from
 * the headers Node already parsed; a request of another worker's key is
 * relayed to that worker over a link (src/worker/link/front.ts) and its response
 * written back, byte for byte, in its place among the connection's responses.
 *
 * Why not frame the connection in JavaScript (the hand-back path,
 * src/worker/reuse/handback.ts): a framed connection costs every request, the ones served
 * here included, a second stream and a parser fed from JavaScript (measured
 * in bench/README.md); here a request served where it is costs one header
 * lookup and one hash.
 *
 * What is relayed is the request as Node parsed it: the method, target and
 * version, the raw header lines in their order and case, and the body (a
 * chunked body is chunked again, trailers included). The response is the
 * back's bytes unchanged. Node's own outgoing queue keeps the responses in the
 * order of the requests (pipelining), and its back-pressure applies.
 *
 * An Upgrade (or CONNECT) of another worker's key is not relayed: the
 * connection is handed back to the master with the request's bytes, and its
 * worker serves the tunnel without a process in between. A request whose
 * worker cannot be reached (not ready, or its link will not connect) is
 * served here, counted as off-worker, and closes its connection (see
 * {@link serveHereAndClose}).
 */

/** Requests on reused connections relayed to their key's worker over a link (key.reuse "forward"). */
const forwardedRequests = new Counter({
  name: 'sticky_worker_forwarded_requests_total',
  help: 'Requests on reused connections this worker relayed to their key\'s worker over a worker-to-worker link (key.reuse "forward")',
  registers: [workerRegistry],
});

/** What the forward hooks need: the reuse context with links. */
export interface ForwardContext extends ReuseContext {
  readonly links: LinkPool;
}

/** A connection's stream to one back worker, and its relays (one at a time: a new client's INFO must not overtake a response). */
interface StreamEntry {
  readonly stream: FrontStream;
  active: Relay | null;
  readonly queue: Relay[];
}

/** A client connection that may carry other clients' requests, after its first request. */
class ForwardedConnection {
  /** Its streams, by back worker pid. */
  private readonly streams = new Map<number, StreamEntry>();
  /** What the app here sees now (the key of the connection's latest request). */
  current: ConnectionInfo;

  constructor(
    readonly socket: net.Socket,
    /** The info the master sent: the peer and its trust, for every key derived here. */
    readonly info: ConnectionInfo,
    private readonly links: LinkPool,
  ) {
    this.current = info;
    // The client left: every back drops its stream (and the request it may still be answering).
    socket.once('close', () => {
      for (const entry of this.streams.values()) entry.stream.reset();
      this.streams.clear();
    });
  }

  /** The app here serves this request: it sees the request's key. */
  serveHere(to: Destination): void {
    this.present(to);
    (this.socket as unknown as Record<symbol, unknown>)[CONNECTION_INFO] = this.current;
  }

  /** The info for a request going to `to`. */
  present(to: Destination): ConnectionInfo {
    this.current = withKeyOf(this.current, to);
    return this.current;
  }

  /** The stream to `pid`'s worker: the open one, or a new one. */
  entry(pid: number): StreamEntry {
    const known = this.streams.get(pid);
    if (known !== undefined && known.stream.open) return known;
    const entry: StreamEntry = { stream: this.links.stream(pid), active: null, queue: known?.queue ?? [] };
    this.streams.set(pid, entry);
    return entry;
  }

  /** The relay on `entry` is over: the next one waiting for that worker goes. */
  next(pid: number, entry: StreamEntry): void {
    entry.active = null;
    const relay = entry.queue.shift();
    if (relay !== undefined) relay.start();
    else if (!entry.stream.open && this.streams.get(pid) === entry) this.streams.delete(pid);
  }
}

/** A client socket's forward state: FIRST_SEEN after its first request, then its ForwardedConnection or null. */
const FORWARD_STATE = Symbol('sticky.forward-state');
const FIRST_SEEN = 1;

/** How often a refused request goes again before its connection is given up. */
const MAX_ATTEMPTS = 5;
/** The wait before a refused request goes to the same worker again (times the attempt). */
const RETRY_WAIT_MS = 10;

/** One request relayed to its worker over a link. */
class Relay implements StreamUser {
  private entry: StreamEntry | null = null;
  private finished = false;
  /** The back's server closes after this response (or the client asked to): so does this connection. */
  private closeAfter: boolean;
  /** The request body waits for CREDIT. */
  private bodyPaused = false;
  /** What was sent of the request, until the back shows it took it (null: it did, or nothing sent yet). */
  private replay: Buffer[] | null = null;
  /** The stream's CREDIT count when the request was sent: one more means the back took it. */
  private creditsAtSend = 0;
  /** Times the request went again after a refusal. */
  private attempts = 0;
  /** The body is being read into the link: it can no longer be served here. */
  private bodyRead = false;

  constructor(
    private readonly connection: ForwardedConnection,
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
    private readonly to: Destination,
    private pid: number,
    private readonly ctx: ForwardContext,
    private readonly serveHere: (req: http.IncomingMessage, res: http.ServerResponse) => void,
  ) {
    // Connection: close or HTTP/1.0 from the client, or a draining worker's "close" set before the hooks ran.
    this.closeAfter = !res.shouldKeepAlive || res.getHeader('connection') === 'close';
  }

  /** Sends the request now, or after the relay before it on the same stream. */
  start(): void {
    if (this.connection.socket.destroyed) return;
    if (!this.ctx.links.usable(this.pid)) {
      this.onStreamUnreachable();
      return;
    }
    const entry = this.connection.entry(this.pid);
    if (entry.active !== null) {
      entry.queue.push(this);
      return;
    }
    this.begin(entry);
  }

  private begin(entry: StreamEntry): void {
    this.entry = entry;
    entry.active = this;
    entry.stream.user = this;
    if (entry.stream.connected) this.send();
  }

  /**
   * Sends the request: who the client is, the head, then the body as it
   * arrives. What was sent is kept (a window at most) until the back shows it
   * took the request (a CREDIT, a response byte): a back that refuses the
   * stream (it closed it as idle meanwhile) gets it again on a new one.
   */
  private send(): void {
    const stream = (this.entry as StreamEntry).stream;
    const socket = this.connection.socket;
    const info = this.connection.present(this.to);
    stream.sendInfo({ info, remoteAddress: socket.remoteAddress, remotePort: socket.remotePort, remoteFamily: socket.remoteFamily, localAddress: socket.localAddress, localPort: socket.localPort });
    this.creditsAtSend = stream.credits;
    if (this.replay !== null) {
      // Again, on a new stream.
      for (const bytes of this.replay) stream.send(bytes);
      return;
    }
    const req = this.req;
    // Node answered Expect: 100-continue here already (no checkContinue listener): the back must not answer it again.
    const sent100 = sentContinue(this.res);
    // A "close" set on this response before the hooks ran is this worker's (it drains): the back's answer must say it.
    const head = requestHead(req, sent100, this.res.getHeader('connection') === 'close');
    this.replay = [head];
    stream.send(head);
    forwardedRequests.inc();
    const headers = req.headers;
    const chunked = headers['transfer-encoding'] !== undefined;
    if (!chunked && (headers['content-length'] === undefined || headers['content-length'] === '0')) return;
    this.bodyRead = true;
    req.on('data', (chunk: Buffer) => {
      // Every piece is sent (within the window's slack); the last answer says whether to wait.
      let flowing = chunked ? this.sendBody(chunkHeader(chunk.length)) : true;
      flowing = this.sendBody(chunk) && flowing;
      if (chunked) flowing = this.sendBody(CRLF) && flowing;
      if (!flowing && !this.finished) {
        this.bodyPaused = true;
        req.pause();
      }
    });
    req.on('end', () => {
      if (chunked) this.sendBody(lastChunk(req.rawTrailers));
    });
  }

  /** Request body bytes, on the current stream (kept for a resend until the back took the request). */
  private sendBody(bytes: Buffer): boolean {
    const entry = this.entry;
    if (entry === null || this.finished) return false;
    if (this.replay !== null) {
      if (entry.stream.credits === this.creditsAtSend) this.replay.push(bytes);
      else this.replay = null;
    }
    return entry.stream.send(bytes);
  }

  onStreamReady(): void {
    this.send();
  }

  onStreamData(bytes: Buffer, passed: () => void): void {
    this.replay = null;
    // The frames of one read from the link (a head and a body, often) leave in one writev.
    corkUntilNextTick(this.connection.socket);
    // Written to the client, or queued behind the responses before it (Node's outgoing queue); credited once written.
    writeRelayed(this.res, bytes, passed);
  }

  onStreamDone(): void {
    // An END in the same read (the back closes after this response) is seen first.
    process.nextTick(() => this.finish());
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    const entry = this.entry as StreamEntry;
    entry.stream.user = null;
    if (!headWritten(this.res)) {
      // A response without a byte cannot come from Node's server: treat it as a reset.
      entry.stream.reset();
      this.connection.socket.destroy();
      return;
    }
    if (this.closeAfter) closeAfter(this.res);
    this.res.end();
    this.connection.next(this.pid, entry);
  }

  onStreamEnd(): void {
    this.closeAfter = true;
    // END after this response was finished: the client read "Connection: close" in it; this side closes too.
    if (this.finished) this.connection.socket.end();
  }

  onStreamRefused(): void {
    if (this.finished) return;
    const entry = this.entry as StreamEntry;
    // Taken (a CREDIT came) or answered in part: it may have been processed, so it cannot go again.
    if (this.replay === null || entry.stream.credits !== this.creditsAtSend || this.attempts >= MAX_ATTEMPTS) {
      this.onStreamReset();
      return;
    }
    this.attempts++;
    this.entry = null;
    const pid = this.pid;
    // The relays queued behind it for that worker go too (each decides again if refused).
    this.connection.next(pid, entry);
    // Not processed: again, to the worker holding the slot now. A worker that
    // drains refuses new streams, and the master names the slot's replacement
    // before it drains the old one; until the view says so, wait a little.
    const retry = (): void => {
      if (this.finished || this.connection.socket.destroyed) return;
      const now = readyPid(this.to.slot);
      if (now === pid && this.attempts < MAX_ATTEMPTS && this.ctx.links.usable(pid)) {
        this.attempts++;
        setTimeout(retry, RETRY_WAIT_MS * this.attempts).unref();
        return;
      }
      if (now === 0 || !this.ctx.links.usable(now)) {
        // Nowhere to send it: served here if its body is still unread, else the connection goes.
        if (this.bodyRead) this.onStreamReset();
        else this.onStreamUnreachable();
        return;
      }
      this.pid = now;
      this.start();
    };
    if (readyPid(this.to.slot) === pid) setTimeout(retry, RETRY_WAIT_MS).unref();
    else retry();
  }

  onStreamReset(): void {
    if (this.finished) return;
    // The back reset the stream mid-request (an error, a timeout, or it died): the client's connection goes too.
    this.finished = true;
    this.connection.socket.destroy();
  }

  onStreamUnreachable(): void {
    if (this.finished) return;
    // The link never connected (its worker is going): nothing was sent.
    this.finished = true;
    serveHereAndClose(this.connection, this.to, this.req, this.res, this.serveHere);
    if (this.entry !== null) this.connection.next(this.pid, this.entry);
  }

  onStreamCredit(): void {
    if (!this.bodyPaused) return;
    this.bodyPaused = false;
    this.req.resume();
  }
}

/**
 * A request whose worker cannot be reached now (not ready in the master's
 * view, or its link will not connect: it is going away) cannot be handed back
 * either: Node's parser already owns the connection's bytes. It is served
 * here (counted), and its response closes the connection, so the proxy's next
 * request comes on a new connection, decided by the master: at most one
 * request per connection served off its worker.
 */
function serveHereAndClose(connection: ForwardedConnection, to: Destination, req: http.IncomingMessage, res: http.ServerResponse, serveHere: (req: http.IncomingMessage, res: http.ServerResponse) => void): void {
  offWorkerRequests.inc();
  connection.serveHere(to);
  res.shouldKeepAlive = false;
  res.setHeader('connection', 'close');
  serveHere(req, res);
}

const corked = new WeakSet<net.Socket>();

function uncork(socket: net.Socket): void {
  corked.delete(socket);
  socket.uncork();
}

/** Holds a socket's writes until the current tick is over (once per tick). */
function corkUntilNextTick(socket: net.Socket): void {
  if (corked.has(socket)) return;
  corked.add(socket);
  socket.cork();
  process.nextTick(uncork, socket);
}

const CRLF = Buffer.from('\r\n', 'latin1');

function chunkHeader(length: number): Buffer {
  return Buffer.from(`${length.toString(16)}\r\n`, 'latin1');
}

/** The last chunk of a chunked body, with the request's trailers (RFC 9112 7.1). */
function lastChunk(rawTrailers: readonly string[]): Buffer {
  let text = '0\r\n';
  for (let i = 0; i + 1 < rawTrailers.length; i += 2) text += `${rawTrailers[i] as string}: ${rawTrailers[i + 1] as string}\r\n`;
  return Buffer.from(`${text}\r\n`, 'latin1');
}

/**
 * The request head as Node parsed it: the request line and the raw header
 * lines in their order and case. Node keeps header bytes as latin1 strings, so
 * latin1 gives back the bytes that arrived. `dropExpect`: without the Expect
 * header (Node here answered 100-continue already). `close`: this side closes
 * the connection after the response (a draining worker), so the back must
 * answer `Connection: close` for the client to know: the request's own
 * Connection lines give way to one saying so.
 */
export function requestHead(req: http.IncomingMessage, dropExpect: boolean, close = false): Buffer {
  let head = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/${req.httpVersion}\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    if (dropExpect && name.length === 6 && name.toLowerCase() === 'expect') continue;
    if (close && name.length === 10 && name.toLowerCase() === 'connection') continue;
    head += `${name}: ${raw[i + 1] as string}\r\n`;
  }
  if (close) head += 'Connection: close\r\n';
  return Buffer.from(`${head}\r\n`, 'latin1');
}

/**
 * The hooks of key.reuse "forward": one in front of the app's requests (it
 * must come before the other hooks, so that the worker serving a request is
 * the one that inspects, logs and cookies it) and one in front of its upgrades.
 */
export function forwardHooks(ctx: ForwardContext): { request: RequestHook; upgrade: UpgradeHook } {
  const sticky = ctx.stickyCookie !== undefined;

  /**
   * The connection's state for a later request, or null (first request, or one
   * client only). Kept on the socket itself, and built from its second request
   * on, so a connection of one request pays for nothing: a WeakMap entry and a
   * state with a close listener per connection cost new connections measurable
   * CPU (bench/README.md).
   */
  const reusedConnection = (socket: Duplex | null): ForwardedConnection | null => {
    // Only client connections: requests arriving over a link (a StandInSocket) are this worker's own by construction.
    if (!(socket instanceof net.Socket)) return null;
    const holder = socket as unknown as Record<symbol, ForwardedConnection | typeof FIRST_SEEN | null | undefined>;
    const known = holder[FORWARD_STATE];
    if (known === FIRST_SEEN) {
      // The second request: from here on each request decides. The info is still the master's.
      const info = (socket as unknown as Record<symbol, ConnectionInfo | undefined>)[CONNECTION_INFO];
      const connection = info !== undefined && mayCarryOtherClients(info, ctx.rules.order, sticky) ? new ForwardedConnection(socket, info, ctx.links) : null;
      holder[FORWARD_STATE] = connection;
      return connection;
    }
    if (known !== undefined) return known;
    // The first request: the master decided it.
    holder[FORWARD_STATE] = FIRST_SEEN;
    return null;
  };

  const request: RequestHook = (req, res, serveHere) => {
    const connection = reusedConnection(req.socket);
    if (connection === null) return false;
    const to = destination(headOfRequest(req), connection.info, ctx);
    if (to.slot === ctx.slot) {
      connection.serveHere(to);
      return false;
    }
    const pid = readyPid(to.slot);
    if (pid === 0 || !ctx.links.usable(pid)) serveHereAndClose(connection, to, req, res, serveHere);
    else new Relay(connection, req, res, to, pid, ctx, serveHere).start();
    return true;
  };

  const upgrade: UpgradeHook = (req, socket, head) => {
    const connection = reusedConnection(socket);
    if (connection === null) return false;
    const to = destination(headOfRequest(req), connection.info, ctx);
    if (to.slot === ctx.slot) {
      connection.serveHere(to);
      return false;
    }
    // A response still being written (a pipelined request before it), or a
    // client that half-closed (its FIN is read here): the tunnel cannot move.
    const client = socket as net.Socket;
    if (responseInProgress(client) || client.readableEnded) {
      offWorkerRequests.inc();
      connection.serveHere(to);
      return false;
    }
    const taken = takeSocketBack(client, requestHead(req, false), head);
    if (taken === null) {
      // The client half-closed while its reads were being stopped: a tunnel to nobody.
      client.destroy();
      return true;
    }
    handedBack.inc();
    const send = (): void => ctx.handBack(client, taken, connection.present(to), handbackKeyOf(to), () => client.destroy());
    if (client.writableLength === 0) send();
    else client.once('drain', send);
    return true;
  };

  return { request, upgrade };
}
