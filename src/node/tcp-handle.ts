import net from 'node:net';
import { internalsUsable } from './public-paths.js';

/**
 * Raw libuv TCP handles (Node's tcp_wrap), read and opened without a
 * net.Socket, as Node's own cluster round-robin passes them. Mirrors
 * lib/net.js (onStreamRead via lib/internal/stream_base_commons.js,
 * `new TCP(TCPConstants.SOCKET)` + `open(fd)`); checked on Node 22, 24, 26.
 */

/** A raw TCP handle as accept or {@link openDescriptor} gives it (opaque outside this folder). */
export type RawTcpHandle = object & { readonly __rawTcpHandle?: never };

/** The handle's members used here (src/tcp_wrap.cc, src/stream_base.cc). */
interface TcpWrapHandle {
  readonly fd?: number;
  onread: ((arrayBuffer: ArrayBuffer | undefined) => void) | null;
  readStart(): number;
  readStop(): number;
  close(callback?: () => void): void;
  getpeername(out: { address?: string; port?: number }): number;
  getsockname(out: { address?: string; port?: number }): number;
}

/** How a raw handle's onread learns the byte count and offset (stream_base_commons.js onStreamRead). */
interface StreamWrapBinding {
  readonly streamBaseState: Int32Array;
  readonly kReadBytesOrError: number;
  readonly kArrayBufferOffset: number;
}

interface TcpWrapBinding {
  readonly TCP: new (type: number) => { open(fd: number): number; close(): void };
  readonly constants: { readonly SOCKET: number };
}

/**
 * `process.binding` is deprecated (DEP0111, documentation-only through Node
 * 26) but is how userland reaches these bindings; lib/net.js uses the same
 * ones through internalBinding. Loading it prints no warning.
 */
function binding<T>(name: string): Partial<T> | null {
  try {
    return (process as unknown as { binding(name: string): unknown }).binding(name) as Partial<T>;
  } catch {
    return null;
  }
}

/** The stream_wrap binding's read state, where it has the shape read here. */
export function loadStreamWrap(): StreamWrapBinding | null {
  const wrap = binding<StreamWrapBinding>('stream_wrap');
  if (wrap !== null && wrap.streamBaseState instanceof Int32Array && typeof wrap.kReadBytesOrError === 'number' && typeof wrap.kArrayBufferOffset === 'number') {
    return wrap as StreamWrapBinding;
  }
  return null;
}

/** The tcp_wrap binding, where it has the shape used here. */
export function loadTcpWrap(): TcpWrapBinding | null {
  const wrap = binding<TcpWrapBinding>('tcp_wrap');
  if (wrap !== null && typeof wrap.TCP === 'function' && typeof wrap.constants?.SOCKET === 'number') return wrap as TcpWrapBinding;
  return null;
}

const streamWrap = loadStreamWrap();
const tcpWrap = loadTcpWrap();

/** Whether accepted handles can be read raw here (else the master takes net.Sockets). */
export const RAW_READS = internalsUsable('raw-accept', () => streamWrap !== null && tcpWrap !== null && typeof (tcpWrap.TCP.prototype as Partial<TcpWrapHandle>).readStart === 'function');

/** Whether received descriptors can be opened as TCP handles here (else hand-offs go over Node's IPC). */
export const DESCRIPTORS_OPEN = internalsUsable('fd-open', () => tcpWrap !== null && typeof (tcpWrap.TCP.prototype as Partial<TcpWrapBinding['TCP']['prototype']>).open === 'function');

function wrapOf(handle: RawTcpHandle): TcpWrapHandle {
  return handle as unknown as TcpWrapHandle;
}

/**
 * Starts reading a raw handle: `onChunk` gets each chunk (a view of libuv's
 * fresh buffer, as net.Socket makes), `onEnd` the client's EOF or an error.
 * Returns false when reading cannot start (the caller closes the handle).
 * Only where {@link RAW_READS}.
 */
export function readRaw(handle: RawTcpHandle, onChunk: (chunk: Buffer) => void, onEnd: () => void): boolean {
  const state = (streamWrap as StreamWrapBinding).streamBaseState;
  const { kReadBytesOrError, kArrayBufferOffset } = streamWrap as StreamWrapBinding;
  const wrap = wrapOf(handle);
  wrap.onread = (arrayBuffer) => {
    const nread = state[kReadBytesOrError] as number;
    if (nread > 0 && arrayBuffer !== undefined) {
      onChunk(Buffer.from(arrayBuffer, state[kArrayBufferOffset] as number, nread));
      return;
    }
    if (nread === 0) return;
    // EOF (UV_EOF) or an error: the client is gone.
    wrap.onread = ignoreRead;
    onEnd();
  };
  return wrap.readStart() === 0;
}

/**
 * Stops a raw handle's reads now: not one more byte is read. A raw handle has
 * no stream above it to start reading again (compare {@link stopSocketReads}
 * in socket.ts), so readStop is the whole story.
 */
export function stopRawReads(handle: RawTcpHandle, open: boolean): void {
  const wrap = wrapOf(handle);
  if (open) wrap.readStop();
  wrap.onread = ignoreRead;
}

/** Closes a raw handle (its descriptor). */
export function closeRaw(handle: RawTcpHandle): void {
  const wrap = wrapOf(handle);
  wrap.onread = ignoreRead;
  wrap.close();
}

/** The peer address of a raw handle ('' when unknown). */
export function rawPeer(handle: RawTcpHandle): string {
  const out: { address?: string } = {};
  return wrapOf(handle).getpeername(out) === 0 ? (out.address ?? '') : '';
}

/** A raw handle's local address and port, or null when unknown. */
export function rawLocal(handle: RawTcpHandle): { address: string; port: number } | null {
  const out: { address?: string; port?: number } = {};
  return wrapOf(handle).getsockname(out) === 0 && out.address !== undefined && out.port !== undefined ? { address: out.address, port: out.port } : null;
}

/** A raw handle's peer port, or -1 when unknown. */
export function rawPeerPort(handle: RawTcpHandle): number {
  const out: { address?: string; port?: number } = {};
  return wrapOf(handle).getpeername(out) === 0 ? (out.port ?? -1) : -1;
}

/** A raw handle's descriptor (libuv's, Unix only), or -1. */
export function rawDescriptor(handle: RawTcpHandle): number {
  return wrapOf(handle).fd ?? -1;
}

/**
 * A net.Socket over a raw handle, as net.Server's onconnection builds one
 * (`new Socket({ handle })`, lib/net.js; @types/node does not list the
 * option). The socket starts reading itself (read(0) → readStart): a handle
 * still reading makes that fail with EALREADY, so stop it first.
 */
export function socketFromHandle(handle: RawTcpHandle): net.Socket {
  return new net.Socket({ handle, readable: true, writable: true } as net.SocketConstructorOpts);
}

/**
 * Opens a received descriptor as a TCP handle, what Node's cluster makes of
 * the handles it passes; null when it does not open (the caller closes the
 * descriptor). Only where {@link DESCRIPTORS_OPEN}.
 */
export function openDescriptor(fd: number): RawTcpHandle | null {
  const wrap = tcpWrap as TcpWrapBinding;
  const handle = new wrap.TCP(wrap.constants.SOCKET);
  if (handle.open(fd) === 0) return handle as RawTcpHandle;
  handle.close();
  return null;
}

function ignoreRead(): void {
  // Nothing more is read from this handle here.
}
