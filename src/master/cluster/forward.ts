import net from 'node:net';
import type { ClientConn } from '../client-conn.js';

/** Where a forwarded connection goes: the owner's peer port. */
export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

/** How a forward ends up. */
export interface ForwardEvents {
  /** The owner accepted: the client is its from now on (`connectMs`: how long the connect took). */
  connected(connectMs: number): void;
  /**
   * The owner could not be reached before anything was sent: the client
   * connection is untouched (not read, nothing written) and can go elsewhere.
   */
  unreachable(reason: 'refused' | 'timeout' | 'error'): void;
  /** Both sides are closed (only after `connected`). */
  closed(): void;
}

/**
 * The byte pump from a client to the node that owns its key: connect to the
 * owner's peer port, write `header` (PROXY v2) and the bytes already read,
 * then copy both ways until both sides have closed. Nothing is parsed after
 * the peek; `pipe` keeps backpressure both ways (a side that does not read
 * stops the other's reads), and each side's FIN is passed on as a FIN
 * (half-close), as HAProxy does in TCP mode.
 *
 * The client is not touched until the owner has accepted: a refused or
 * timed-out connect leaves it as it was, so the caller can send it to the
 * key's next node, or serve it here.
 */
export function forwardConnection(conn: ClientConn, to: PeerAddress, header: Buffer, bytes: Buffer, connectTimeoutMs: number, events: ForwardEvents): { destroy(): void } {
  let client: net.Socket | null = null;
  const started = process.hrtime.bigint();
  const upstream = net.connect({ host: to.host, port: to.port, noDelay: true, allowHalfOpen: true });
  let connected = false;
  const timer = setTimeout(() => fail('timeout'), connectTimeoutMs);
  function fail(reason: 'refused' | 'timeout' | 'error'): void {
    if (connected) return;
    connected = true; // once
    clearTimeout(timer);
    upstream.destroy();
    events.unreachable(reason);
  }
  const onConnectError = (error: NodeJS.ErrnoException): void => fail(error.code === 'ECONNREFUSED' ? 'refused' : 'error');
  upstream.on('error', onConnectError);
  upstream.once('connect', () => {
    if (connected) return;
    connected = true;
    clearTimeout(timer);
    upstream.removeListener('error', onConnectError);
    if (conn.closed) {
      // The client left while we connected: the owner sees a connection without a byte.
      upstream.destroy();
      events.connected(Number(process.hrtime.bigint() - started) / 1e6);
      events.closed();
      return;
    }
    const socket = conn.toSocket();
    client = socket;
    socket.allowHalfOpen = true;
    socket.setNoDelay(true);
    upstream.write(bytes.length === 0 ? header : Buffer.concat([header, bytes]));
    let open = 2;
    const onClose = (): void => {
      if (--open === 0) events.closed();
    };
    // A reset on either side ends both: the other side must see it, not hang.
    const onError = (): void => {
      socket.destroy();
      upstream.destroy();
    };
    socket.on('error', onError);
    upstream.on('error', onError);
    socket.once('close', onClose);
    upstream.once('close', onClose);
    socket.pipe(upstream);
    upstream.pipe(socket);
    events.connected(Number(process.hrtime.bigint() - started) / 1e6);
  });
  return {
    destroy: () => {
      if (client === null) fail('error');
      client?.destroy();
      upstream.destroy();
    },
  };
}
