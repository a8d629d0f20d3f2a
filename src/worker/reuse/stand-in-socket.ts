import type net from 'node:net';
import { ResponseTrackingDuplex } from '../../node/response-tracking.js';

/** The addresses a stand-in presents to the app (a net.Socket has them all). */
export interface Endpoints {
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  readonly remoteFamily?: string | undefined;
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
}

/**
 * What the app's server writes: Node's http server writes its heads (and
 * string bodies) as strings; the stand-in passes them on as they are, like a
 * net.Socket, instead of converting each to a Buffer first (a copy and
 * garbage per response).
 */
export type OutChunk = Buffer | { readonly text: string; readonly encoding: BufferEncoding };

/** What feeds a {@link StandInSocket} and takes what the app's server writes to it. */
export interface StandInOwner {
  /** The real stream behind it: timeouts and socket options go to it. */
  readonly socket: net.Socket;
  /** The client's addresses as the app must see them. */
  readonly endpoints: Endpoints;
  /** The app's server finished a response (every byte of it written). */
  onResponseDone(): void;
  /** The app's server wants more bytes. */
  onStandInRead(): void;
  /** The app's bytes for the client (strings with their encodings); `done` once they are taken. */
  writeOut(chunks: OutChunk[], done: (error?: Error | null) => void): void;
  /** The app's server ended its side. */
  onStandInFinal(): void;
  /** The app's server destroyed the stand-in (or the client left). */
  onStandInDestroy(): void;
  /** Where the server's timeouts go, when not to the real stream (a stream of a shared link has none of its own). */
  setStreamTimeout?(ms: number): void;
}

/** What a stand-in (and the app's request on it) buffers before it pushes back (Node's default before 22). */
export const STAND_IN_HIGH_WATER_MARK = 16 * 1024;

/**
 * Stands in for the client socket in front of the app's http server: what the
 * runtime feeds comes out as the socket's data; what the server writes goes to
 * the owner. Timeouts and socket options go to the owner's real stream; the
 * addresses are the owner's endpoints (key.reuse framing, src/worker/reuse/handback.ts; and
 * the back end of a worker-to-worker link, src/worker/link/back.ts).
 */
export class StandInSocket extends ResponseTrackingDuplex {
  constructor(private readonly owner: StandInOwner) {
    // allowHalfOpen: the client's FIN must not end the response side (http.Server relies on it).
    // The high-water mark is set, not Node's default: push() answers "full" at it, and that is when
    // the owner stops crediting its peer. Node 22 raised the default from 16 KiB to 64 KiB
    // (stream.getDefaultHighWaterMark), and the app's IncomingMessage copies the socket's
    // readableHighWaterMark (lib/_http_incoming.js), so with the default every line buffered a
    // different amount for an app that does not read.
    super({ allowHalfOpen: true, decodeStrings: false, readableHighWaterMark: STAND_IN_HIGH_WATER_MARK });
    // After the http server lets go of a stand-in (upgrade handed to the app,
    // or destroyed), an error with no listener must not crash the worker.
    this.on('error', ignore);
  }

  protected onResponseFinished(): void {
    this.owner.onResponseDone();
  }

  override _read(): void {
    this.owner.onStandInRead();
  }

  override _write(chunk: Buffer | string, encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.owner.writeOut([outChunk(chunk, encoding)], done);
  }

  override _writev(chunks: Array<{ chunk: Buffer | string; encoding: BufferEncoding }>, done: (error?: Error | null) => void): void {
    this.owner.writeOut(
      chunks.map((entry) => outChunk(entry.chunk, entry.encoding)),
      done,
    );
  }

  override _final(done: (error?: Error | null) => void): void {
    this.owner.onStandInFinal();
    done();
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    this.owner.onStandInDestroy();
    done(error);
  }

  setTimeout(ms: number, callback?: () => void): this {
    if (this.owner.setStreamTimeout) this.owner.setStreamTimeout(ms);
    else this.owner.socket.setTimeout(ms);
    if (callback) this.once('timeout', callback);
    return this;
  }

  setNoDelay(noDelay?: boolean): this {
    this.owner.socket.setNoDelay(noDelay);
    return this;
  }

  setKeepAlive(enable?: boolean, initialDelay?: number): this {
    this.owner.socket.setKeepAlive(enable, initialDelay);
    return this;
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  address(): ReturnType<net.Socket['address']> {
    const endpoints = this.owner.endpoints;
    if (endpoints === this.owner.socket) return this.owner.socket.address();
    return { address: endpoints.localAddress ?? '', family: endpoints.remoteFamily ?? '', port: endpoints.localPort ?? 0 };
  }

  get remoteAddress(): string | undefined {
    return this.owner.endpoints.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.owner.endpoints.remotePort;
  }

  get remoteFamily(): string | undefined {
    return this.owner.endpoints.remoteFamily;
  }

  get localAddress(): string | undefined {
    return this.owner.endpoints.localAddress;
  }

  get localPort(): number | undefined {
    return this.owner.endpoints.localPort;
  }
}

function outChunk(chunk: Buffer | string, encoding: BufferEncoding): OutChunk {
  return typeof chunk === 'string' ? { text: chunk, encoding } : chunk;
}

/** Writes one chunk to a socket (a string with its encoding, as net.Socket takes it). */
export function writeChunk(socket: net.Socket, chunk: OutChunk, done?: (error?: Error | null) => void): boolean {
  if (Buffer.isBuffer(chunk)) return done === undefined ? socket.write(chunk) : socket.write(chunk, done);
  return done === undefined ? socket.write(chunk.text, chunk.encoding) : socket.write(chunk.text, chunk.encoding, done);
}

/** A chunk's length in bytes. */
export function chunkBytes(chunk: OutChunk): number {
  return Buffer.isBuffer(chunk) ? chunk.length : Buffer.byteLength(chunk.text, chunk.encoding);
}

function ignore(): void {
  // Errors on a stand-in that is closing anyway; its owner does the bookkeeping.
}
