import net, { type Socket } from 'node:net';
import { stopReading } from './stop-reading.js';
import { descriptorOf } from '../pool/fd-channel.js';

/**
 * A client connection the master holds while it peeks and hands off. Two
 * kinds: a raw libuv TCP handle straight from accept (the fast path: no
 * net.Socket, no stream machinery, as Node's own cluster round-robin passes
 * raw handles), and a net.Socket (a connection a worker handed back).
 */
export interface ClientConn {
  /** The TCP peer address as the kernel reports it ('' when unknown). */
  readonly peer: string;
  /** Starts reading: `onChunk` gets each chunk, `onEnd` the client's close or an error. */
  read(onChunk: (chunk: Buffer) => void, onEnd: () => void): void;
  /** Stops reading now, synchronously: not one more byte is read by the master. */
  stopReading(): void;
  /** Closes the master's descriptor (refused, or a worker holds its own now). */
  close(): void;
  /** True once closed (by us, or the client went away while we read). */
  readonly closed: boolean;
  /** What `worker.send` passes along: the handle or the socket. */
  readonly sendable: object;
  /** The descriptor (for the fd channel), or -1 when unknown or closed. */
  readonly fd: number;
  /** A net.Socket over the connection, for the rare write (an inspection refusal). */
  toSocket(): Socket;
}

/** The libuv TCP handle (node's tcp_wrap) as this module uses it. */
interface TcpHandle {
  /** The descriptor (libuv's, Unix only; -1 elsewhere). */
  readonly fd?: number;
  onread: ((arrayBuffer: ArrayBuffer | undefined) => void) | null;
  readStart(): number;
  readStop(): number;
  close(callback?: () => void): void;
  getpeername(out: { address?: string; port?: number }): number;
}

/** Node's stream read state: how a raw handle's onread learns the byte count and offset. */
interface StreamWrapBinding {
  readonly streamBaseState: Int32Array;
  readonly kReadBytesOrError: number;
  readonly kArrayBufferOffset: number;
}

/**
 * Node's `stream_wrap` binding, or null where it is not reachable (the raw
 * path is then off and connections come as net.Sockets). `process.binding` is
 * deprecated (DEP0111, documentation-only on Node 20) but is how userland code
 * reads a raw handle; Node's own net.js does exactly this through the internal
 * binding.
 */
function loadStreamWrap(): StreamWrapBinding | null {
  try {
    const binding = (process as unknown as { binding(name: string): unknown }).binding('stream_wrap') as Partial<StreamWrapBinding>;
    if (binding.streamBaseState instanceof Int32Array && typeof binding.kReadBytesOrError === 'number' && typeof binding.kArrayBufferOffset === 'number') {
      return binding as StreamWrapBinding;
    }
  } catch {
    // not available on this runtime
  }
  return null;
}

const streamWrap = loadStreamWrap();

/** Whether raw handles can be read here (Node 20: yes). */
export const RAW_HANDLES_SUPPORTED = streamWrap !== null;

/** A raw TCP handle from accept. */
class RawConn implements ClientConn {
  readonly peer: string;
  closed = false;

  constructor(private readonly handle: TcpHandle) {
    const out: { address?: string } = {};
    this.peer = handle.getpeername(out) === 0 ? (out.address ?? '') : '';
  }

  get sendable(): object {
    return this.handle;
  }

  get fd(): number {
    return this.closed ? -1 : (this.handle.fd ?? -1);
  }

  read(onChunk: (chunk: Buffer) => void, onEnd: () => void): void {
    const state = (streamWrap as StreamWrapBinding).streamBaseState;
    const { kReadBytesOrError, kArrayBufferOffset } = streamWrap as StreamWrapBinding;
    this.handle.onread = (arrayBuffer) => {
      const nread = state[kReadBytesOrError] as number;
      if (nread > 0 && arrayBuffer !== undefined) {
        // A view, as net.Socket makes: libuv allocates a fresh buffer for every read.
        onChunk(Buffer.from(arrayBuffer, state[kArrayBufferOffset] as number, nread));
        return;
      }
      if (nread === 0) return;
      // EOF or an error: the client is gone.
      this.close();
      onEnd();
    };
    if (this.handle.readStart() !== 0) {
      this.close();
      onEnd();
    }
  }

  stopReading(): void {
    // A raw handle has no stream above it to start reading again behind our
    // back (compare stop-reading.ts): readStop is the whole story.
    if (!this.closed) this.handle.readStop();
    this.handle.onread = ignoreRead;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.handle.onread = ignoreRead;
    this.handle.close();
  }

  toSocket(): Socket {
    // net.Socket starts reading itself (read(0) → readStart); a handle that is
    // still reading makes that fail with EALREADY and the socket destroy itself.
    this.stopReading();
    // `handle` is the option net.Server itself uses; @types/node does not list it.
    return new net.Socket({ handle: this.handle, readable: true, writable: true } as net.SocketConstructorOpts);
  }
}

/** A net.Socket the master holds (a connection a worker handed back). */
class SocketConn implements ClientConn {
  readonly peer: string;
  private onData: (chunk: Buffer) => void = ignoreChunk;

  constructor(private readonly socket: Socket) {
    // A client can reset at any moment; an unhandled 'error' would crash the master.
    socket.on('error', ignoreError);
    this.peer = socket.remoteAddress ?? '';
  }

  get closed(): boolean {
    return this.socket.destroyed;
  }

  get sendable(): object {
    return this.socket;
  }

  get fd(): number {
    return descriptorOf(this.socket);
  }

  read(onChunk: (chunk: Buffer) => void, onEnd: () => void): void {
    this.onData = onChunk;
    this.socket.on('data', onChunk);
    this.socket.once('close', onEnd);
    this.socket.resume();
  }

  stopReading(): void {
    stopReading(this.socket, this.onData);
  }

  close(): void {
    this.socket.destroy();
  }

  toSocket(): Socket {
    this.socket.removeListener('data', this.onData);
    return this.socket;
  }
}

/** Wraps a raw handle from accept. */
export function rawConn(handle: unknown): ClientConn {
  return new RawConn(handle as TcpHandle);
}

/** Wraps a net.Socket (its reading must already be stopped, or not started). */
export function socketConn(socket: Socket): ClientConn {
  return new SocketConn(socket);
}

function ignoreRead(): void {
  // The master reads no more from this connection.
}

function ignoreChunk(): void {
  // Replaced by read().
}

function ignoreError(): void {
  // Client resets are normal; the close that follows does the bookkeeping.
}
