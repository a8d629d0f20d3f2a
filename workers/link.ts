import net from 'node:net';
import { join } from 'node:path';
import { CONNECTION_INFO, type ConnectionInfo } from '../src/connection-info.js';
import { Segment, chunkBytes, writeChunk, type Endpoints, type OutChunk, type SegmentOwner } from './segment.js';

/**
 * Worker-to-worker links (key.reuse "forward"). A balancer that pools its
 * backend connections (AWS ALB, nginx with upstream keep-alive) sends requests
 * of many clients down each one, so the next request on a connection often
 * belongs to another worker. "handback" moves the whole connection through the
 * master for it: a descriptor passed twice, a socket and an HTTP connection set
 * up again, for every switch. "forward" keeps the connection where it is and
 * relays that request over a link to its worker, the way HAProxy or nginx relay
 * to a backend over a pooled keep-alive connection: a few bytes of framing on a
 * UNIX socket, nothing set up per request.
 *
 * Every worker listens on `<linkDir>/<pid>.sock` (the directory is the master's,
 * mode 0700). The worker holding a client connection (the front) opens links to
 * the others and keeps idle ones in a pool; a link serves one client connection
 * at a time (a session), so TCP-level backpressure works per client and no
 * multiplexing is needed. The worker at the other end (the back) feeds what
 * arrives to its app's server through one long-lived Segment per link, so its
 * app sees an ordinary keep-alive connection whose client address and key are
 * those of the session's client.
 *
 * Frames, both ways: u8 type, u32 LE payload length, payload.
 * - INFO  (front → back) JSON {@link LinkInfo}: a session starts, or the key changed;
 * - DATA  (both ways)    request bytes to the back, response bytes to the front;
 * - END   (both ways)    the client half-closed / the back's server ended its side;
 * - DONE  (back → front) one response is complete (every byte of it sent before);
 * - IDLE  (front → back) the session is over, the link waits in the pool.
 * Closing the link without END is a reset: the other side drops its session.
 */

export const FRAME_INFO = 1;
export const FRAME_DATA = 2;
export const FRAME_END = 3;
export const FRAME_DONE = 4;
export const FRAME_IDLE = 5;

const HEADER_BYTES = 5;
/** The largest frame either side accepts; both ends are this code, so a bigger one is a bug. */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;

/** What the back needs to present a session's client to its app. */
export interface LinkInfo {
  readonly info: ConnectionInfo;
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  readonly remoteFamily?: string | undefined;
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
}

/** A frame header. */
export function frameHeader(type: number, length: number): Buffer {
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header[0] = type;
  header.writeUInt32LE(length, 1);
  return header;
}

const EMPTY = Buffer.alloc(0);
const DONE_FRAME = frameHeader(FRAME_DONE, 0);
const END_FRAME = frameHeader(FRAME_END, 0);
const IDLE_FRAME = frameHeader(FRAME_IDLE, 0);

/**
 * Splits a byte stream into frames. Payloads are views of the chunks read
 * (no copy), except for a frame cut across reads.
 */
export class FrameReader {
  private pending: Buffer = EMPTY;

  constructor(private readonly onFrame: (type: number, payload: Buffer) => void) {}

  /** Takes the next bytes; false when they are not frames (the link must close). */
  push(chunk: Buffer): boolean {
    let bytes = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    for (;;) {
      if (bytes.length < HEADER_BYTES) break;
      const type = bytes[0] as number;
      const length = bytes.readUInt32LE(1);
      if (type < FRAME_INFO || type > FRAME_IDLE || length > MAX_FRAME_BYTES) {
        this.pending = EMPTY;
        return false;
      }
      if (bytes.length < HEADER_BYTES + length) break;
      const payload = bytes.subarray(HEADER_BYTES, HEADER_BYTES + length);
      bytes = bytes.subarray(HEADER_BYTES + length);
      this.onFrame(type, payload);
    }
    this.pending = bytes.length === 0 ? EMPTY : bytes;
    return true;
  }
}

/** Writes DATA frames for `chunks` in one go; false when the link is over its high-water mark. */
export function writeData(socket: net.Socket, chunks: readonly OutChunk[]): boolean {
  socket.cork();
  let flowing = true;
  for (const chunk of chunks) {
    socket.write(frameHeader(FRAME_DATA, chunkBytes(chunk)));
    flowing = writeChunk(socket, chunk);
  }
  socket.uncork();
  return flowing;
}

const corked = new WeakSet<net.Socket>();

function uncork(socket: net.Socket): void {
  corked.delete(socket);
  socket.uncork();
}

/**
 * Holds a socket's writes until the current tick (`later` false) or the
 * current turn of the event loop (`later` true) is over, so that what one
 * event produces leaves in one writev: a request's INFO and DATA; a response
 * and its DONE (which Node's http server reports a few ticks after the last
 * write); the response bytes of one read from a link.
 */
export function corkFor(socket: net.Socket, later: boolean): void {
  if (corked.has(socket)) return;
  corked.add(socket);
  socket.cork();
  if (later) setImmediate(uncork, socket);
  else process.nextTick(uncork, socket);
}

/** The path a worker's link listener has (its pid's). */
export function linkPath(dir: string, pid: number): string {
  return join(dir, `${pid}.sock`);
}

// ------------------------------------------------------------------ front

/** What a session's owner (the client connection on the front) hears from the back. */
export interface LinkUser {
  /** Response bytes for the client. */
  onLinkData(bytes: Buffer): void;
  /** One response complete. */
  onLinkDone(): void;
  /** The back's server ended its side (its last response said close). */
  onLinkEnd(): void;
  /** The link is gone without END (the back reset the session, or died). */
  onLinkGone(): void;
  /** The link is connected and the session can start (only when it was not at once). */
  onLinkReady(): void;
  /** The link wants no more bytes for now / again. */
  onLinkDrain(): void;
}

/** Idle links are closed by the front after this long (the back's keep-alive timeout must not race it). */
const IDLE_LINK_MS = 4_000;
/** How long a worker whose link would not connect is not tried again. */
const DOWN_MS = 1_000;
/** Idle links kept per back worker. */
const MAX_IDLE_PER_BACK = 16;

/** One link from the front's side. */
export class FrontLink {
  readonly socket: net.Socket;
  private readonly reader: FrameReader;
  connected = false;
  /** False once it cannot carry another session (END either way, a reset, bad frames). */
  reusable = true;
  private user: LinkUser | null = null;
  /** The last INFO sent in this session (to send a new one only when it changed). */
  lastInfo: ConnectionInfo | null = null;

  constructor(
    private readonly pool: LinkPool,
    readonly pid: number,
    path: string,
  ) {
    this.reader = new FrameReader((type, payload) => this.onFrame(type, payload));
    this.socket = net.connect({ path });
    this.socket.on('connect', () => {
      this.connected = true;
      this.user?.onLinkReady();
    });
    this.socket.on('data', (chunk: Buffer) => {
      if (!this.reader.push(chunk)) this.socket.destroy();
    });
    this.socket.on('drain', () => this.user?.onLinkDrain());
    this.socket.on('timeout', () => {
      if (this.user === null) this.socket.destroy();
    });
    this.socket.on('error', ignore);
    this.socket.on('close', () => {
      this.reusable = false;
      this.pool.forget(this);
      const user = this.user;
      this.user = null;
      user?.onLinkGone();
    });
  }

  /** Starts a session for `user`. */
  attach(user: LinkUser): void {
    this.user = user;
    this.lastInfo = null;
    this.socket.setTimeout(0);
    this.socket.resume();
  }

  /** Sends who the client is (when it changed since the last INFO). */
  sendInfo(linkInfo: LinkInfo): void {
    if (this.lastInfo === linkInfo.info) return;
    this.lastInfo = linkInfo.info;
    const json = Buffer.from(JSON.stringify(linkInfo));
    corkFor(this.socket, false);
    this.socket.write(frameHeader(FRAME_INFO, json.length));
    this.socket.write(json);
  }

  /** Request bytes; false when the link buffers more than it should (wait for onLinkDrain). */
  send(bytes: Buffer): boolean {
    corkFor(this.socket, false);
    return writeData(this.socket, [bytes]);
  }

  /** The client half-closed: the back's server sees the end; the link ends with the session. */
  sendEnd(): void {
    this.reusable = false;
    this.socket.write(END_FRAME);
  }

  /** The session is over: back to the pool when it can carry another, else closed. */
  release(): void {
    this.user = null;
    if (!this.reusable || !this.connected || !this.pool.keep(this)) {
      this.socket.destroy();
      return;
    }
    this.socket.write(IDLE_FRAME);
    this.socket.setTimeout(IDLE_LINK_MS);
    // Reading while idle: a close from the back must take it out of the pool.
    this.socket.resume();
  }

  /** Drops the session and the link (the client went away mid-session). */
  destroy(): void {
    this.user = null;
    this.socket.destroy();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  private onFrame(type: number, payload: Buffer): void {
    const user = this.user;
    if (user === null) {
      // Nothing may arrive on an idle link.
      this.socket.destroy();
      return;
    }
    switch (type) {
      case FRAME_DATA:
        user.onLinkData(payload);
        return;
      case FRAME_DONE:
        user.onLinkDone();
        return;
      case FRAME_END:
        this.reusable = false;
        user.onLinkEnd();
        return;
      default:
        this.socket.destroy();
    }
  }
}

/** The front's links, idle ones pooled per back worker (by pid). */
export class LinkPool {
  private readonly idle = new Map<number, FrontLink[]>();
  /** Workers whose link would not connect, until when (ms since the epoch). */
  private readonly down = new Map<number, number>();
  /** The workers holding a ready slot, as last announced (null: not yet). */
  private current: Set<number> | null = null;
  /** Links opened so far (a counter for the metrics). */
  opened = 0;

  constructor(private readonly dir: string) {}

  /** An idle link to `pid`, or a new one (not connected yet: wait for onLinkReady). */
  acquire(pid: number, user: LinkUser): FrontLink {
    const list = this.idle.get(pid);
    let link = list?.pop();
    while (link !== undefined && !link.reusable) link = list?.pop();
    if (link === undefined) {
      link = new FrontLink(this, pid, linkPath(this.dir, pid));
      this.opened++;
    }
    link.attach(user);
    return link;
  }

  /** False for a while after a link to `pid` failed to connect (its worker is going or gone). */
  usable(pid: number): boolean {
    const until = this.down.get(pid);
    if (until === undefined) return true;
    if (Date.now() < until) return false;
    this.down.delete(pid);
    return true;
  }

  /** A link to `pid` would not connect: use the master for it for a while. */
  markDown(pid: number): void {
    this.down.set(pid, Date.now() + DOWN_MS);
  }

  /**
   * The master's pool view named these workers (pids; 0 for a slot not ready):
   * idle links to any other (replaced, draining, gone) close now, before that
   * worker closes them while it drains, and sessions leave them at their next
   * request (workers/reuse.ts).
   */
  retain(pids: readonly number[]): void {
    this.current = new Set(pids);
    for (const [pid, list] of this.idle) {
      if (this.current.has(pid)) continue;
      this.idle.delete(pid);
      for (const link of list) link.destroy();
    }
  }

  /** Takes a link back; false when the pool for its back is full or its worker left the pool. */
  keep(link: FrontLink): boolean {
    if (this.current !== null && !this.current.has(link.pid)) return false;
    let list = this.idle.get(link.pid);
    if (list === undefined) {
      list = [];
      this.idle.set(link.pid, list);
    }
    if (list.length >= MAX_IDLE_PER_BACK) return false;
    list.push(link);
    return true;
  }

  /** A link closed: out of the pool. */
  forget(link: FrontLink): void {
    const list = this.idle.get(link.pid);
    if (list === undefined) return;
    const at = list.indexOf(link);
    if (at !== -1) list.splice(at, 1);
    if (list.length === 0) this.idle.delete(link.pid);
  }

  /** Idle links to `pid` (for tests and metrics). */
  idleCount(pid: number): number {
    return this.idle.get(pid)?.length ?? 0;
  }
}

function ignore(): void {
  // A link error is followed by 'close', which does the bookkeeping.
}


// ------------------------------------------------------------------- back

/** What the back end of the links needs from the worker runtime. */
export interface BackContext {
  /** This worker's slot (the info the app sees names it). */
  readonly slot: number;
  /** The app's server. */
  readonly server: () => net.Server;
  /** A link opened (true) or closed (false): a draining worker waits for its links. */
  readonly onLinkCount: (open: boolean) => void;
}

/**
 * One link from the back's side: the app's server sees it as one keep-alive
 * connection (a {@link Segment}) whose client is the current session's.
 */
class BackLink implements SegmentOwner {
  private readonly segment = new Segment(this);
  private readonly reader: FrameReader;
  endpoints: Endpoints = {};
  private started = false;
  /** Between sessions (after IDLE): the server's keep-alive timeout must not close the link under the front. */
  private idle = false;

  constructor(
    readonly socket: net.Socket,
    private readonly ctx: BackContext,
  ) {
    this.reader = new FrameReader((type, payload) => this.onFrame(type, payload));
    socket.on('data', (chunk: Buffer) => {
      if (!this.reader.push(chunk)) socket.destroy();
    });
    socket.on('timeout', () => {
      if (!this.idle) this.segment.emit('timeout');
    });
    socket.on('error', ignore);
    socket.on('close', () => this.segment.destroy());
  }

  private onFrame(type: number, payload: Buffer): void {
    switch (type) {
      case FRAME_INFO: {
        const linkInfo = JSON.parse(payload.toString()) as LinkInfo;
        const { info, ...endpoints } = linkInfo;
        (this.segment as unknown as Record<symbol, unknown>)[CONNECTION_INFO] = { ...info, worker: this.ctx.slot };
        this.endpoints = endpoints;
        this.idle = false;
        if (!this.started) {
          this.started = true;
          this.ctx.server().emit('connection', this.segment);
        }
        return;
      }
      case FRAME_DATA:
        if (!this.started) {
          this.socket.destroy();
          return;
        }
        if (!this.segment.push(payload)) this.socket.pause();
        return;
      case FRAME_END:
        this.segment.push(null);
        return;
      case FRAME_IDLE:
        this.idle = true;
        return;
      default:
        this.socket.destroy();
    }
  }

  onResponseDone(): void {
    // After END (the server ended the segment first) the front closes anyway.
    if (!this.socket.writableEnded && !this.socket.destroyed) this.socket.write(DONE_FRAME);
  }

  onSegmentRead(): void {
    if (this.socket.isPaused()) this.socket.resume();
  }

  writeOut(chunks: OutChunk[], done: (error?: Error | null) => void): void {
    const socket = this.socket;
    if (socket.destroyed) return done(new Error('link closed'));
    // Held until the end of this turn, so that the DONE the server reports a
    // few ticks later leaves in the same writev; so `done` cannot wait for the
    // write itself: it comes at once unless the link is over its high-water mark.
    corkFor(socket, true);
    if (writeData(socket, chunks)) process.nextTick(done);
    else socket.once('drain', () => done());
  }

  onSegmentFinal(): void {
    if (this.socket.destroyed) return;
    this.socket.write(END_FRAME);
    this.socket.end();
  }

  onSegmentDestroy(): void {
    // What the server wrote last (a 400, a 408) goes out before the close.
    if (!this.socket.destroyed) this.socket.destroySoon();
  }
}

/**
 * The back end: listens on `path` (this worker's pid's, see {@link linkPath})
 * and feeds every link to the app's server. Resolves once listening.
 */
export function listenForLinks(path: string, ctx: BackContext): Promise<net.Server> {
  const server = net.createServer((socket) => {
    ctx.onLinkCount(true);
    socket.once('close', () => ctx.onLinkCount(false));
    new BackLink(socket, ctx);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // exclusive: a cluster worker's listen() would otherwise go through the
    // master, which would accept for it; this socket is the worker's own.
    server.listen({ path, exclusive: true }, () => {
      server.removeListener('error', reject);
      resolve(server);
    });
  });
}
