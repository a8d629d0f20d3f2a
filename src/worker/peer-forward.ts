import net from 'node:net';
import type { PeerForward } from '../shared/connection-info.js';
import type { PeerOutcome } from '../shared/wire/ipc.js';
import { forwardSeconds, forwarding } from './metrics.js';

/** Where a forwarded connection goes: the owner's peer port. */
export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

/** Why a peer could not be reached. */
export type PeerFailure = Exclude<PeerOutcome, 'connected'>;

/** How a forward ends up. */
export interface ForwardEvents {
  /** The owner accepted: the client is its from now on. */
  connected(): void;
  /**
   * The owner could not be reached before anything was sent: the client
   * socket is untouched (nothing consumed, nothing written) and can be served
   * elsewhere.
   */
  unreachable(reason: PeerFailure): void;
  /** Both sides are closed (only after `connected`). */
  closed(): void;
}

/**
 * The byte pump from a client to the node that owns its key, run in a worker
 * so that the master's event loop only peeks and hands off: connect to the
 * owner's peer port, write `header` (PROXY v2) and the bytes the master
 * already read, then copy both ways until both sides have closed. Nothing is
 * parsed; `pipe` keeps backpressure both ways (a side that does not read stops
 * the other's reads), and each side's FIN is passed on as a FIN (half-close),
 * as HAProxy does in TCP mode.
 *
 * The client is not touched until the owner has accepted: a refused or
 * timed-out connect leaves what it sent waiting in its stream, so the caller
 * can try the key's next node, or serve it here.
 */
export function forwardSocket(client: net.Socket, to: PeerAddress, header: Buffer, bytes: Buffer, connectTimeoutMs: number, events: ForwardEvents): { destroy(): void } {
  const upstream = net.connect({ host: to.host, port: to.port, noDelay: true, allowHalfOpen: true });
  let settled = false;
  const timer = setTimeout(() => fail('timeout'), connectTimeoutMs);
  function fail(reason: PeerFailure): void {
    if (settled) return;
    settled = true; // once
    clearTimeout(timer);
    upstream.destroy();
    events.unreachable(reason);
  }
  const onConnectError = (error: NodeJS.ErrnoException): void => fail(error.code === 'ECONNREFUSED' ? 'refused' : 'error');
  upstream.on('error', onConnectError);
  upstream.once('connect', () => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    upstream.removeListener('error', onConnectError);
    events.connected();
    let open = 2;
    const onClose = (): void => {
      if (--open === 0) events.closed();
    };
    client.once('close', onClose);
    upstream.once('close', onClose);
    if (client.destroyed) {
      // The client left while we connected: the owner sees a connection without a byte.
      upstream.destroy();
      open--;
      return;
    }
    client.allowHalfOpen = true;
    client.setNoDelay(true);
    upstream.write(bytes.length === 0 ? header : Buffer.concat([header, bytes]));
    // A reset on either side ends both: the other side must see it, not hang.
    const onError = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', onError);
    upstream.on('error', onError);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return {
    destroy: () => {
      if (!settled) fail('error');
      client.destroy();
      upstream.destroy();
    },
  };
}

/** What forwardToOwner needs from the runtime. */
export interface OwnerForwardOptions {
  readonly connectTimeoutMs: number;
  /** Tells the master a peer failed, or that one it held as unreachable answered. */
  report(peer: string, outcome: PeerOutcome): void;
  /** No node answered: the connection is served by this worker (its key's slot on this node). */
  serveHere(): void;
}

/**
 * Carries out the master's plan for a connection another node owns: the
 * owner first, then the key's next nodes, each until one accepts; when none
 * does, the connection is served here, untouched.
 */
export function forwardToOwner(client: net.Socket, bytes: Buffer, plan: PeerForward, options: OwnerForwardOptions): void {
  const header = Buffer.from(plan.header, 'base64');
  const attempt = (index: number): void => {
    const peer = plan.peers[index];
    if (peer === undefined) {
      options.serveHere();
      return;
    }
    forwardSocket(client, peer, header, bytes, options.connectTimeoutMs, {
      connected: () => {
        forwardSeconds.observe({ peer: peer.id }, Number(process.hrtime.bigint() - BigInt(Math.round(plan.acceptedAt))) / 1e9);
        forwarding.inc();
        if (plan.retrying.includes(peer.id)) options.report(peer.id, 'connected');
      },
      unreachable: (reason) => {
        options.report(peer.id, reason);
        attempt(index + 1);
      },
      closed: () => forwarding.dec(),
    });
  };
  attempt(0);
}
