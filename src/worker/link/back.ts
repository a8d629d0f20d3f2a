import net from 'node:net';
import { CONNECTION_INFO, type ConnectionInfo } from '../../shared/connection-info.js';
import { CONNECTION_KEY_SOURCES } from '../../shared/key/sources.js';
import { StandInSocket, chunkBytes, type Endpoints, type OutChunk, type StandInOwner } from '../reuse/stand-in-socket.js';
import { chunksBytes, EMPTY, FRAME_CREDIT, FRAME_DATA, FRAME_DONE, FRAME_END, FRAME_INFO, FRAME_KEY, FRAME_RESET, FrameReader, FrameWriter, REFUSED_PAYLOAD, STREAM_WINDOW, type LinkInfo } from './frames.js';

/**
 * The back of the links (src/worker/link/frames.ts has the protocol): each
 * worker listens for the other workers' links and serves their streams to its
 * app through a stand-in socket per stream, with that client's address and key.
 */


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

function ignore(): void {
  // A link error is followed by 'close', which does the bookkeeping.
}
