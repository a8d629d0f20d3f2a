import net from 'node:net';
import type { ConnectionInfo } from '../../shared/connection-info.js';
import { CONNECTION_KEY_SOURCES } from '../../shared/key/sources.js';
import { FRAME_CREDIT, FRAME_DATA, FRAME_DONE, FRAME_END, FRAME_INFO, FRAME_KEY, FRAME_RESET, FrameReader, FrameWriter, linkPath, REFUSED, STREAM_WINDOW, type LinkInfo } from './frames.js';

/**
 * The front of the links (src/worker/link/frames.ts has the protocol): the
 * worker holding a client connection opens a stream on its link to the worker
 * a request belongs to, relays the request and takes the response.
 */


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
