import net from 'node:net';
import { join } from 'node:path';
import { CONNECTION_INFO, type ConnectionInfo } from '../../shared/connection-info.js';
import { CONNECTION_KEY_SOURCES } from '../../shared/key/sources.js';
import { StandInSocket, chunkBytes, type Endpoints, type OutChunk, type StandInOwner } from '../reuse/stand-in-socket.js';

/**
 * Worker-to-worker links for key.reuse "forward" (src/worker/reuse/forward.ts): one
 * UNIX socket from each worker to each other worker, carrying every relayed
 * request between the two as multiplexed streams, the way HTTP/2 carries
 * requests. A stream is one client connection of the front (the worker holding
 * it) as seen by the back (the worker its request belongs to): the back's app
 * sees one keep-alive connection per stream, with that client's address and key.
 *
 * Why one link and not one socket per client connection: on this machine a
 * write to a UNIX socket and the wake-up of the reader cost more than the
 * relay's own work (bench/README.md has the numbers): many messages written
 * together on one socket cost a fraction of one message per socket. Every
 * frame a turn of the event loop produces leaves in one writev at the end of
 * that turn.
 *
 * Frames: u8 type, u32 LE stream id, u32 LE payload length, payload.
 * - INFO   (front → back) JSON {@link LinkInfo}: the stream's client (opens the stream);
 * - DATA   (both ways)    request bytes to the back, response bytes to the front;
 * - END    (back → front) the back's server ended the stream (it closes after that response);
 * - DONE   (back → front) one response is complete (every byte of it sent before);
 * - RESET  (both ways)    the stream is gone (the client left, the back's server destroyed it);
 *                         from the back with the payload byte 1 ("refused", HTTP/2's
 *                         REFUSED_STREAM): nothing sent on it since its last response was
 *                         processed, so the request may go again on a new stream;
 * - CREDIT (both ways)    u32 LE: that many DATA bytes of the stream were passed on;
 * - KEY    (front → back) u8 key source, the key (latin1): the stream's next request is
 *                         another client's, everything else in its INFO unchanged (the
 *                         JSON of a whole INFO per relayed request cost measurable CPU).
 *
 * Stream ids only grow on a link (a back opens a stream only with an id above
 * every id it opened before), so a frame for a stream the back already closed
 * can never open a new one by mistake; a link whose ids run out is retired.
 *
 * Flow control per stream and direction, as HTTP/2 does it (RFC 9113 5.2):
 * at most {@link STREAM_WINDOW} DATA bytes are in flight without CREDIT, so a
 * client that reads slowly holds back its own stream only, never the link,
 * and no side buffers more than a window per stream.
 */

export const FRAME_INFO = 1;
export const FRAME_DATA = 2;
export const FRAME_END = 3;
export const FRAME_DONE = 4;
export const FRAME_RESET = 5;
export const FRAME_CREDIT = 6;
export const FRAME_KEY = 7;


export const HEADER_BYTES = 9;
/** The largest frame either side accepts; both ends are this code, so a bigger one is a bug. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;
/** DATA bytes a stream may have in flight, each way, before the receiver's CREDIT. */
export const STREAM_WINDOW = 256 * 1024;

/** What the back needs to present a stream's client to its app. */
export interface LinkInfo {
  readonly info: ConnectionInfo;
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  readonly remoteFamily?: string | undefined;
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
}

/** The path a worker's link listener has (its pid's). */
export function linkPath(dir: string, pid: number): string {
  return join(dir, `${pid}.sock`);
}

/** A frame header. */
export function frameHeader(type: number, stream: number, length: number): Buffer {
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header[0] = type;
  header.writeUInt32LE(stream, 1);
  header.writeUInt32LE(length, 5);
  return header;
}

const EMPTY = Buffer.alloc(0);

function chunksBytes(chunks: readonly OutChunk[]): number {
  let total = 0;
  for (const chunk of chunks) total += chunkBytes(chunk);
  return total;
}

/**
 * Splits a byte stream into frames. Payloads are views of the chunks read
 * (no copy), except for a frame cut across reads.
 */
export class FrameReader {
  private pending: Buffer = EMPTY;

  constructor(private readonly onFrame: (type: number, stream: number, payload: Buffer) => void) {}

  /** Takes the next bytes; false when they are not frames (the link must close). */
  push(chunk: Buffer): boolean {
    let bytes = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    let at = 0;
    for (;;) {
      if (bytes.length - at < HEADER_BYTES) break;
      const type = bytes[at] as number;
      const length = bytes.readUInt32LE(at + 5);
      if (type < FRAME_INFO || type > FRAME_KEY || length > MAX_FRAME_BYTES) {
        this.pending = EMPTY;
        return false;
      }
      if (bytes.length - at < HEADER_BYTES + length) break;
      const stream = bytes.readUInt32LE(at + 1);
      const payload = bytes.subarray(at + HEADER_BYTES, at + HEADER_BYTES + length);
      at += HEADER_BYTES + length;
      this.onFrame(type, stream, payload);
    }
    if (at > 0) bytes = bytes.subarray(at);
    this.pending = bytes.length === 0 ? EMPTY : bytes;
    return true;
  }
}

/**
 * The frames of one link, written together once per turn of the event loop
 * (setImmediate: after every I/O callback of the turn, so everything one read
 * of many clients produced shares one writev).
 */
class FrameWriter {
  private queued: OutChunk[] = [];
  private scheduled = false;
  private readonly flush = (): void => {
    this.scheduled = false;
    const queued = this.queued;
    this.queued = [];
    const socket = this.socket;
    if (socket.destroyed || queued.length === 0) return;
    socket.cork();
    for (const chunk of queued) {
      if (Buffer.isBuffer(chunk)) socket.write(chunk);
      else socket.write(chunk.text, chunk.encoding);
    }
    socket.uncork();
  };

  constructor(private readonly socket: net.Socket) {}

  frame(type: number, stream: number, payload: OutChunk | null): void {
    this.queued.push(frameHeader(type, stream, payload === null ? 0 : chunkBytes(payload)));
    if (payload !== null) this.queued.push(payload);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  credit(stream: number, bytes: number): void {
    const payload = Buffer.allocUnsafe(4);
    payload.writeUInt32LE(bytes, 0);
    this.frame(FRAME_CREDIT, stream, payload);
  }
}

// ------------------------------------------------------------------ front

/** What a stream's current user (one relayed request on the front) hears from the back. */
export interface StreamUser {
  /** Response bytes for the client; call `passed` once they are written on (flow control). */
  onStreamData(bytes: Buffer, passed: () => void): void;
  /** One response complete. */
  onStreamDone(): void;
  /**
   * The back refused the stream (or went away) before processing what was
   * sent on it since its last response, as far as the link knows: the user
   * sends it again elsewhere unless it saw the back take it.
   */
  onStreamRefused(): void;
  /** The back's server ended the stream (its last response closes the connection). */
  onStreamEnd(): void;
  /** The stream is gone mid-request: the back reset it, or the link closed. */
  onStreamReset(): void;
  /** The link never connected (nothing was sent): serve the request elsewhere. */
  onStreamUnreachable(): void;
  /** The window has room again for request bytes. */
  onStreamCredit(): void;
  /** The link is connected: the request can be sent. */
  onStreamReady(): void;
}

/** One client connection's stream to one back worker. */
export class FrontStream {
  user: StreamUser | null = null;
  /** Request DATA bytes sent and not credited yet. */
  private unacked = 0;
  /** The last INFO sent (a new one only when it changed). */
  private lastInfo: ConnectionInfo | null = null;
  /** False once the stream cannot carry another request (reset, ended, link gone). */
  open = true;
  /** CREDIT frames received: one after a request was sent means the back took it. */
  credits = 0;

  constructor(
    readonly link: MuxLink,
    readonly id: number,
  ) {}

  get connected(): boolean {
    return this.link.connected;
  }

  /** Sends who the client is (when it changed since the last INFO on this stream). */
  sendInfo(linkInfo: LinkInfo): void {
    const info = linkInfo.info;
    const last = this.lastInfo;
    if (last === info) return;
    this.lastInfo = info;
    // The same client connection (so the same addresses) with another request's key: a KEY frame.
    if (last !== null && last.worker === info.worker && last.proxy === info.proxy && last.peer === info.peer && last.peerTrusted === info.peerTrusted) {
      const payload = Buffer.allocUnsafe(1 + Buffer.byteLength(info.key, 'latin1'));
      payload[0] = CONNECTION_KEY_SOURCES.indexOf(info.keySource);
      payload.write(info.key, 1, 'latin1');
      this.link.writer.frame(FRAME_KEY, this.id, payload);
      return;
    }
    this.link.writer.frame(FRAME_INFO, this.id, Buffer.from(JSON.stringify(linkInfo)));
  }

  /** Request bytes; false when the window is full (wait for onStreamCredit). */
  send(bytes: Buffer): boolean {
    if (bytes.length === 0 || !this.open) return this.open;
    this.unacked += bytes.length;
    this.link.writer.frame(FRAME_DATA, this.id, bytes);
    return this.unacked < STREAM_WINDOW;
  }

  /** The client connection is gone: the back drops the stream. */
  reset(): void {
    if (!this.open) return;
    this.open = false;
    this.user = null;
    this.link.writer.frame(FRAME_RESET, this.id, null);
    this.link.forget(this);
  }

  /** A frame for this stream from the back. */
  onFrame(type: number, payload: Buffer): void {
    const user = this.user;
    switch (type) {
      case FRAME_DATA:
        if (user === null) return this.reset();
        user.onStreamData(payload, () => {
          if (this.open) this.link.writer.credit(this.id, payload.length);
        });
        return;
      case FRAME_DONE:
        user?.onStreamDone();
        return;
      case FRAME_END:
        this.open = false;
        this.link.forget(this);
        user?.onStreamEnd();
        return;
      case FRAME_RESET:
        if (payload.length === 1 && payload[0] === REFUSED) this.refused();
        else this.gone();
        return;
      case FRAME_CREDIT: {
        if (payload.length !== 4) return this.link.destroy();
        this.credits++;
        const wasFull = this.unacked >= STREAM_WINDOW;
        this.unacked = Math.max(0, this.unacked - payload.readUInt32LE(0));
        if (wasFull && this.unacked < STREAM_WINDOW) user?.onStreamCredit();
        return;
      }
      default:
        this.link.destroy();
    }
  }

  /**
   * The back closed the stream without processing what came after its last
   * response, or the link closed under it: to its user, as a refusal (the user
   * knows whether the back had taken its request).
   */
  refused(): void {
    this.detach()?.onStreamRefused();
  }

  /** The link never connected: nothing was sent on the stream. */
  unreachable(): void {
    this.detach()?.onStreamUnreachable();
  }

  /** Reset by the back mid-request. */
  gone(): void {
    if (!this.open && this.user === null) return;
    this.detach()?.onStreamReset();
  }

  /** Out of the link; its user, if any, to tell why. */
  private detach(): StreamUser | null {
    this.open = false;
    this.link.forget(this);
    const user = this.user;
    this.user = null;
    return user;
  }
}

/** The RESET payload of a stream the back refused (see FRAME_RESET). */
const REFUSED = 1;
const REFUSED_PAYLOAD = Buffer.from([REFUSED]);
/** The largest stream id (u32); tests may lower it through {@link setMaxStreamId}. */
let MAX_STREAM_ID = 0xffffffff;

/** For tests: makes links retire after `id` streams. */
export function setMaxStreamId(id: number): void {
  MAX_STREAM_ID = id;
}

/** How long a worker whose link would not connect is not tried again. */
const DOWN_MS = 1_000;

/** The front's link to one back worker. */
export class MuxLink {
  readonly socket: net.Socket;
  readonly writer: FrameWriter;
  private readonly reader: FrameReader;
  private readonly streams = new Map<number, FrontStream>();
  private nextId = 1;
  connected = false;
  /** No new streams (its worker left the pool): closes once its last stream ends. */
  private retiring = false;

  constructor(
    private readonly links: LinkPool,
    readonly pid: number,
    path: string,
  ) {
    this.socket = net.connect({ path });
    this.writer = new FrameWriter(this.socket);
    this.reader = new FrameReader((type, stream, payload) => this.streams.get(stream)?.onFrame(type, payload));
    this.socket.on('connect', () => {
      this.connected = true;
      for (const stream of [...this.streams.values()]) stream.user?.onStreamReady();
    });
    this.socket.on('data', (chunk: Buffer) => {
      if (!this.reader.push(chunk)) this.socket.destroy();
    });
    this.socket.on('error', ignore);
    this.socket.on('close', () => {
      this.links.forgetLink(this);
      const streams = [...this.streams.values()];
      this.streams.clear();
      if (!this.connected) {
        this.links.markDown(this.pid);
        for (const stream of streams) stream.unreachable();
        return;
      }
      // The back went away: a request it had not taken yet may go elsewhere, like a refused one.
      for (const stream of streams) stream.refused();
    });
  }

  /** A new stream (a client connection's first relay to this back). */
  open(): FrontStream {
    const stream = new FrontStream(this, this.nextId++);
    this.streams.set(stream.id, stream);
    // Ids only grow: the last one retires the link (its open streams finish on it).
    if (this.nextId > MAX_STREAM_ID) this.retire();
    return stream;
  }

  get usable(): boolean {
    return !this.retiring && !this.socket.destroyed;
  }

  forget(stream: FrontStream): void {
    this.streams.delete(stream.id);
    if (this.retiring && this.streams.size === 0) this.socket.end();
  }

  /** Its worker left the pool: no new streams, closed once the open ones end. */
  retire(): void {
    this.retiring = true;
    this.links.forgetLink(this);
    if (this.streams.size === 0) this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Streams open (tests). */
  get streamCount(): number {
    return this.streams.size;
  }
}

/** The front's links, one per back worker (by pid). */
export class LinkPool {
  private readonly links = new Map<number, MuxLink>();
  /** Workers whose link would not connect, until when (ms since the epoch). */
  private readonly down = new Map<number, number>();
  /** Links opened so far (a counter for tests and metrics). */
  opened = 0;

  constructor(private readonly dir: string) {}

  /** A new stream to `pid`'s worker, on its link (opened now when there is none). */
  stream(pid: number): FrontStream {
    let link = this.links.get(pid);
    if (link === undefined || !link.usable) {
      link = new MuxLink(this, pid, linkPath(this.dir, pid));
      this.links.set(pid, link);
      this.opened++;
    }
    return link.open();
  }

  /** False for a while after a link to `pid` failed to connect (its worker is going or gone). */
  usable(pid: number): boolean {
    const until = this.down.get(pid);
    if (until === undefined) return true;
    if (Date.now() < until) return false;
    this.down.delete(pid);
    return true;
  }

  markDown(pid: number): void {
    this.down.set(pid, Date.now() + DOWN_MS);
  }

  /**
   * The master's pool view named these workers (pids; 0 for a slot not
   * ready): links to any other (replaced, draining, gone) take no new
   * streams and close once their open ones end.
   */
  retain(pids: readonly number[]): void {
    const current = new Set(pids);
    for (const [pid, link] of this.links) if (!current.has(pid)) link.retire();
  }

  forgetLink(link: MuxLink): void {
    if (this.links.get(link.pid) === link) this.links.delete(link.pid);
  }

  /** The link to `pid`, if one is open (tests). */
  linkTo(pid: number): MuxLink | undefined {
    return this.links.get(pid);
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
  /** A stream opened (true) or closed (false): a draining worker waits for its streams. */
  readonly onStreamCount: (open: boolean) => void;
  /** False once this worker drains: new streams are refused (the front sends them to the slot's next worker). */
  readonly accepting?: () => boolean;
}

/** One stream on the back: the app's server sees it as one keep-alive connection (a {@link StandInSocket}). */
class BackStream implements StandInOwner {
  readonly standIn = new StandInSocket(this);
  endpoints: Endpoints = {};
  /** Response DATA bytes sent and not credited yet. */
  private unacked = 0;
  /** Response bytes the window has no room for yet, and the write callback of each chunk. */
  private readonly blocked: Array<{ bytes: Buffer; done: (() => void) | null }> = [];
  /** Request bytes pushed to the stand-in and not credited yet (the server was full). */
  private uncredited = 0;
  private closed = false;
  /** Requests begun on the stream (DATA after the last response) and responses completed. */
  private requests = 0;
  private answered = 0;

  constructor(
    private readonly link: BackLink,
    readonly id: number,
  ) {}

  get socket(): net.Socket {
    return this.link.socket;
  }

  /** The back's server manages no timeout of its own on a stream: the client connection's live on the front. */
  setStreamTimeout(): void {}

  onFrame(type: number, payload: Buffer): void {
    switch (type) {
      case FRAME_INFO: {
        const { info, ...endpoints } = JSON.parse(payload.toString()) as LinkInfo;
        (this.standIn as unknown as Record<symbol, unknown>)[CONNECTION_INFO] = { ...info, worker: this.link.ctx.slot };
        this.endpoints = endpoints;
        return;
      }
      case FRAME_KEY: {
        const keySource = CONNECTION_KEY_SOURCES[payload[0] as number];
        const current = (this.standIn as unknown as Record<symbol, ConnectionInfo | undefined>)[CONNECTION_INFO];
        if (keySource === undefined || current === undefined) {
          this.link.socket.destroy();
          return;
        }
        (this.standIn as unknown as Record<symbol, unknown>)[CONNECTION_INFO] = { ...current, key: payload.toString('latin1', 1), keySource };
        return;
      }
      case FRAME_DATA:
        // Bytes after the last response start a request (or continue one): not idle any more.
        if (this.requests === this.answered) this.requests++;
        if (this.standIn.push(payload) && this.uncredited === 0) this.link.writer.credit(this.id, payload.length);
        else this.uncredited += payload.length;
        return;
      case FRAME_RESET:
        this.closed = true;
        this.standIn.destroy();
        return;
      case FRAME_CREDIT: {
        if (payload.length !== 4) {
          this.link.socket.destroy();
          return;
        }
        this.unacked = Math.max(0, this.unacked - payload.readUInt32LE(0));
        this.pump();
        return;
      }
      default:
        this.link.socket.destroy();
    }
  }

  onResponseDone(): void {
    this.answered++;
    if (!this.closed) this.link.writer.frame(FRAME_DONE, this.id, null);
  }

  onStandInRead(): void {
    if (this.uncredited === 0 || this.closed) return;
    this.link.writer.credit(this.id, this.uncredited);
    this.uncredited = 0;
  }

  writeOut(chunks: OutChunk[], done: (error?: Error | null) => void): void {
    if (this.closed) return done(new Error('stream closed'));
    if (this.blocked.length === 0 && this.unacked + chunksBytes(chunks) <= STREAM_WINDOW) {
      // The common case, a response smaller than the window: framed as written (strings stay strings).
      for (const chunk of chunks) {
        this.unacked += chunkBytes(chunk);
        this.link.writer.frame(FRAME_DATA, this.id, chunk);
      }
      process.nextTick(done);
      return;
    }
    // Past the window the bytes wait for CREDIT, cut to what the window has room for, and so does the server's write.
    for (let i = 0; i < chunks.length; i++) {
      const chunk = chunks[i] as OutChunk;
      this.blocked.push({ bytes: Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.text, chunk.encoding), done: i === chunks.length - 1 ? () => done() : null });
    }
    this.pump();
  }

  /** Sends what the window has room for of the blocked bytes. */
  private pump(): void {
    while (this.blocked.length > 0 && !this.closed) {
      const room = STREAM_WINDOW - this.unacked;
      if (room <= 0) return;
      const head = this.blocked[0] as { bytes: Buffer; done: (() => void) | null };
      const bytes = head.bytes.length <= room ? head.bytes : head.bytes.subarray(0, room);
      this.unacked += bytes.length;
      this.link.writer.frame(FRAME_DATA, this.id, bytes);
      if (bytes.length < head.bytes.length) {
        head.bytes = head.bytes.subarray(bytes.length);
        return;
      }
      this.blocked.shift();
      head.done?.();
    }
  }

  onStandInFinal(): void {
    if (this.closed) return;
    this.closed = true;
    this.link.writer.frame(FRAME_END, this.id, null);
    this.link.drop(this);
  }

  onStandInDestroy(): void {
    for (const blocked of this.blocked.splice(0)) blocked.done?.();
    if (!this.closed) {
      // What the server wrote last (a 400, a 408) was queued before the reset.
      // Destroyed with no request in progress (a draining worker closing idle
      // connections): whatever the front sent since is not processed, "refused".
      this.closed = true;
      this.link.writer.frame(FRAME_RESET, this.id, !this.standIn.responding && this.requests === this.answered ? REFUSED_PAYLOAD : null);
    }
    this.link.drop(this);
  }
}

/** One link from the back's side: its streams, each fed to the app's server. */
class BackLink {
  readonly writer: FrameWriter;
  private readonly reader: FrameReader;
  private readonly streams = new Map<number, BackStream>();
  /** The highest stream id opened: ids only grow. */
  private lastOpened = 0;

  constructor(
    readonly socket: net.Socket,
    readonly ctx: BackContext,
  ) {
    this.writer = new FrameWriter(socket);
    this.reader = new FrameReader((type, id, payload) => this.onFrame(type, id, payload));
    socket.on('data', (chunk: Buffer) => {
      if (!this.reader.push(chunk)) socket.destroy();
    });
    socket.on('error', ignore);
    socket.on('close', () => {
      for (const stream of [...this.streams.values()]) stream.onFrame(FRAME_RESET, EMPTY);
    });
  }

  private onFrame(type: number, id: number, payload: Buffer): void {
    let stream = this.streams.get(id);
    if (stream === undefined) {
      if (type === FRAME_RESET || type === FRAME_CREDIT) return;
      // A stream opens with its INFO and a new id; anything else is for a
      // stream closed here already, which processed none of it: refused.
      // So is a new stream when this worker drains: nothing of it was processed.
      if (type !== FRAME_INFO || id <= this.lastOpened || this.ctx.accepting?.() === false) {
        this.writer.frame(FRAME_RESET, id, REFUSED_PAYLOAD);
        return;
      }
      this.lastOpened = id;
      stream = new BackStream(this, id);
      this.streams.set(id, stream);
      this.ctx.onStreamCount(true);
      stream.onFrame(type, payload);
      this.ctx.server().emit('connection', stream.standIn);
      return;
    }
    stream.onFrame(type, payload);
  }

  drop(stream: BackStream): void {
    if (this.streams.get(stream.id) !== stream) return;
    this.streams.delete(stream.id);
    this.ctx.onStreamCount(false);
  }
}

/**
 * The back end: listens on `path` (this worker's pid's, see {@link linkPath})
 * and feeds every stream of every link to the app's server. Resolves once listening.
 */
export function listenForLinks(path: string, ctx: BackContext): Promise<net.Server> {
  const server = net.createServer((socket) => {
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
