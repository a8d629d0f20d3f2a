import net from 'node:net';
import type tls from 'node:tls';
import { internalsUsable } from './public-paths.js';

/**
 * Private members of net.Socket, tls.TLSSocket and net.Server read or set
 * here, each behind one function. Mirrors lib/net.js, lib/_tls_wrap.js and
 * lib/internal/streams/readable.js; checked on Node 22, 24, 26.
 */

/** The libuv stream handle behind a net.Socket (`socket._handle`, lib/net.js). */
interface StreamHandle {
  readonly fd?: number;
  readStop?: () => number;
  reading?: boolean;
}

function handleOf(socket: net.Socket): StreamHandle | null {
  return (socket as net.Socket & { _handle?: StreamHandle | null })._handle ?? null;
}

/** A socket's descriptor (libuv's, Unix only), or -1 when it has none (destroyed, or not descriptor-backed). */
export function descriptorOf(socket: net.Socket): number {
  if (socket.destroyed) return -1;
  return handleOf(socket)?.fd ?? -1;
}

/** Whether a socket's reads can be stopped at once here (else nothing may take a socket back from Node). */
export const SOCKET_READS_STOP = internalsUsable('stop-reading', () => {
  const probe = new net.Socket();
  const state = (probe as unknown as { _readableState?: { ended?: unknown } })._readableState;
  return typeof (probe as unknown as { _read?: unknown })._read === 'function' && typeof state?.ended === 'boolean';
});

/**
 * Makes a socket stop reading *now*, in the same synchronous callback that
 * decided its fate. `socket.pause()` alone does not stop libuv from reading,
 * and while a handle is in flight to a child process Node replaces its `onread`
 * with a no-op: any bytes read in that window are lost (a 1 MiB POST arrives
 * truncated). So: drop the listener, pause the stream, and stop the handle's
 * reads (`readStop`, and `reading = false` so that Node does not think it is
 * still reading). Never call `socket.read()` afterwards for more than what is
 * buffered: with `_read` neutralised it cannot restart the handle.
 *
 * Node itself would: after a 'data' event the stream schedules
 * `maybeReadMore` on the next tick, which calls `read(0)` → `_read` →
 * `readStart` on the handle, and the next 64 KB segment lands in this
 * process's buffer instead of the receiver's. So the socket's `_read` becomes
 * a no-op: this copy of the handle never reads again, whoever asks.
 */
export function stopSocketReads(socket: net.Socket, onData: (chunk: Buffer) => void): void {
  socket.removeListener('data', onData);
  socket.pause();
  (socket as unknown as { _read: () => void })._read = neverRead;
  const handle = handleOf(socket);
  if (handle && typeof handle.readStop === 'function') {
    handle.readStop();
    handle.reading = false;
  }
}

/**
 * True once the socket's stream has seen the peer's EOF, consumed or not
 * (`_readableState.ended`; the public `readableEnded` is true only after
 * 'end' was emitted, i.e. once every buffered byte was read).
 */
export function sawEof(socket: net.Socket): boolean {
  return (socket as unknown as { _readableState: { ended: boolean } })._readableState.ended;
}

/**
 * The raw socket a TLS socket wraps (`_parent`, lib/_tls_wrap.js), or null.
 * TLSWrap answers the address getters from the TCP handle underneath, and
 * the balancer's per-connection state lives on the raw socket.
 */
export function tlsParentOf(socket: object): object | null {
  const parent = (socket as { _parent?: unknown })._parent;
  return parent !== null && typeof parent === 'object' ? parent : null;
}

/** {@link tlsParentOf} for a TLS socket known to wrap a net.Socket. */
export function tlsRawSocket(socket: tls.TLSSocket): net.Socket | null {
  return tlsParentOf(socket) as net.Socket | null;
}

/** The socket options a net.Server applies to the sockets it accepts (lib/net.js Server and onconnection). */
export interface ServerSocketOptions {
  readonly allowHalfOpen: boolean;
  readonly noDelay: boolean;
  readonly keepAlive: boolean;
  /** Milliseconds (net.Server keeps seconds). */
  readonly keepAliveInitialDelayMs: number;
}

/**
 * What net.Server's own accept path gives each new socket before its
 * 'connection' event, read from the server's fields of the same names
 * (set from its constructor options). `emit('connection')` skips it.
 */
export function serverSocketOptions(server: net.Server): ServerSocketOptions {
  const fields = server as net.Server & { allowHalfOpen?: boolean; noDelay?: boolean; keepAlive?: boolean; keepAliveInitialDelay?: number };
  return {
    allowHalfOpen: fields.allowHalfOpen === true,
    noDelay: fields.noDelay === true,
    keepAlive: fields.keepAlive === true,
    keepAliveInitialDelayMs: (fields.keepAliveInitialDelay ?? 0) * 1000,
  };
}

/** The addresses the app reads from a socket. */
export interface SocketAddresses {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly remoteFamily: string;
  readonly localAddress: string;
  readonly localPort: number;
}

const ADDRESS_PROPS = ['remoteAddress', 'remotePort', 'remoteFamily', 'localAddress', 'localPort'] as const;

/**
 * Makes a socket answer these addresses: own properties shadow net.Socket's
 * prototype getters (lib/net.js `remoteAddress` etc. read the handle).
 */
export function shadowAddresses(socket: object, addresses: SocketAddresses): void {
  const props: PropertyDescriptorMap = {};
  for (const prop of ADDRESS_PROPS) props[prop] = { value: addresses[prop], configurable: true };
  Object.defineProperties(socket, props);
}

/** Copies the addresses {@link shadowAddresses} set on `from` to `to` (a TLS socket over a raw one). */
export function copyShadowedAddresses(from: object, to: object): void {
  for (const prop of ADDRESS_PROPS) {
    if (Object.prototype.hasOwnProperty.call(from, prop)) {
      Object.defineProperty(to, prop, { value: (from as Record<string, unknown>)[prop], configurable: true });
    }
  }
}

function neverRead(): void {
  // Deliberately empty: see stopSocketReads.
}
