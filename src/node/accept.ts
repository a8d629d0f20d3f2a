import type net from 'node:net';
import { RAW_READS, type RawTcpHandle } from './tcp-handle.js';

/**
 * Takes accept over from a listening net.Server: `onHandle` gets each raw
 * client handle (net.Server would wrap each in a net.Socket first), as Node's
 * cluster round-robin does. Mirrors lib/net.js `onconnection(err, clientHandle)`
 * on the server's TCP handle; checked on Node 22, 24, 26. Returns false where
 * raw reads are off or the handle has no such callback: the server's own
 * 'connection' sockets then carry on.
 */
export function takeOverAccept(server: net.Server, onHandle: (handle: RawTcpHandle) => void, onError: (errno: number) => void): boolean {
  if (!RAW_READS) return false;
  const handle = (server as net.Server & { _handle?: { onconnection?: unknown } | null })._handle;
  if (!handle || typeof handle.onconnection !== 'function') return false;
  handle.onconnection = (error: number, clientHandle: RawTcpHandle) => {
    if (error) onError(error);
    else onHandle(clientHandle);
  };
  return true;
}
