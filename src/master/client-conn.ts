import type { Socket } from 'node:net';
import { descriptorOf, stopSocketReads } from '../node/socket.js';
import { closeRaw, rawDescriptor, rawLocal, rawPeer, rawPeerPort, readRaw, socketFromHandle, stopRawReads, type RawTcpHandle } from '../node/tcp-handle.js';

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
  /** The TCP endpoints as the kernel reports them (the peer's and ours), or null when unknown. */
  endpoints(): Endpoints | null;
}

/** A connection's two TCP endpoints. */
export interface Endpoints {
  readonly source: { readonly address: string; readonly port: number };
  readonly destination: { readonly address: string; readonly port: number };
}

/** A raw TCP handle from accept. */
class RawConn implements ClientConn {
  readonly peer: string;
  closed = false;

  constructor(private readonly handle: RawTcpHandle) {
    this.peer = rawPeer(handle);
  }

  get sendable(): object {
    return this.handle;
  }

  get fd(): number {
    return this.closed ? -1 : rawDescriptor(this.handle);
  }

  read(onChunk: (chunk: Buffer) => void, onEnd: () => void): void {
    const end = (): void => {
      this.close();
      onEnd();
    };
    if (!readRaw(this.handle, onChunk, end)) end();
  }

  stopReading(): void {
    stopRawReads(this.handle, !this.closed);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeRaw(this.handle);
  }

  toSocket(): Socket {
    this.stopReading();
    return socketFromHandle(this.handle);
  }

  endpoints(): Endpoints | null {
    const port = rawPeerPort(this.handle);
    const local = rawLocal(this.handle);
    return this.peer === '' || port < 0 || local === null ? null : { source: { address: this.peer, port }, destination: local };
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
    stopSocketReads(this.socket, this.onData);
  }

  close(): void {
    this.socket.destroy();
  }

  toSocket(): Socket {
    this.socket.removeListener('data', this.onData);
    return this.socket;
  }

  endpoints(): Endpoints | null {
    const { remoteAddress, remotePort, localAddress, localPort } = this.socket;
    if (remoteAddress === undefined || remotePort === undefined || localAddress === undefined || localPort === undefined) return null;
    return { source: { address: remoteAddress, port: remotePort }, destination: { address: localAddress, port: localPort } };
  }
}

/** Wraps a raw handle from accept. */
export function rawConn(handle: RawTcpHandle): ClientConn {
  return new RawConn(handle);
}

/** Wraps a net.Socket (its reading must already be stopped, or not started). */
export function socketConn(socket: Socket): ClientConn {
  return new SocketConn(socket);
}

function ignoreChunk(): void {
  // Replaced by read().
}

function ignoreError(): void {
  // Client resets are normal; the close that follows does the bookkeeping.
}
