import type { Socket } from 'node:net';

/** The libuv stream handle behind a net.Socket (internal, feature-checked). */
interface StreamHandle {
  readStop?: () => number;
  reading?: boolean;
}

/**
 * Makes a socket stop reading *now*, in the same synchronous callback that
 * decided its fate. `socket.pause()` alone does not stop libuv from reading,
 * and while a handle is in flight to a child process Node replaces its `onread`
 * with a no-op: any bytes read in that window are lost (a 1 MiB POST arrives
 * truncated). So: drop the listener, pause the stream, and stop the handle's
 * reads (`readStop`, and `reading = false` so that Node does not think it is
 * still reading). Never call `socket.read()` afterwards: it restarts reading.
 *
 * Node itself calls it: after a 'data' event the stream schedules
 * `maybeReadMore` on the next tick, which calls `read(0)` → `_read` →
 * `readStart` on the handle, and the next 64 KB segment lands in the master's
 * buffer instead of the worker's (measured: the first 1 MiB POST after start
 * lost 65536 bytes). So the socket's `_read` becomes a no-op: this copy of the
 * handle never reads again, whoever asks.
 */
export function stopReading(socket: Socket, onData: (chunk: Buffer) => void): void {
  socket.removeListener('data', onData);
  socket.pause();
  (socket as unknown as { _read: () => void })._read = neverRead;
  const handle = (socket as unknown as { _handle?: StreamHandle | null })._handle;
  if (handle && typeof handle.readStop === 'function') {
    handle.readStop();
    handle.reading = false;
  }
}

function neverRead(): void {
  // Deliberately empty: see stopReading.
}
