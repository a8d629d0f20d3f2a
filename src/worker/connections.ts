import type http from 'node:http';
import net from 'node:net';
import { CONNECTION_INFO, type ConnectionInfo } from '../shared/connection-info.js';
import type { WorkerMessage } from '../shared/wire/ipc.js';
import { serverSocketOptions, shadowAddresses } from '../node/socket.js';
import { socketFromHandle, type RawTcpHandle } from '../node/tcp-handle.js';
import type { ConnectionHook } from './hooks.js';
import { connectionsReceived, openConnections } from './metrics.js';
import { forwardToOwner } from './peer-forward.js';

/** What the worker's connections need from the process around them. */
export interface ConnectionsDeps {
  /** The app's server (known once the app has loaded). */
  server(): net.Server;
  /** Where a connection goes after the hooks: the TLS front when `tls` is set, else the app's server. */
  front(): net.Server;
  readonly connectionHooks: readonly ConnectionHook[];
  /** cluster.peer.connectTimeoutMs, for connections another node owns. */
  readonly peerConnectTimeoutMs: number;
  send(message: WorkerMessage): void;
  exit(code: number): void;
  /** How often the open-connection count may be reported, at most. */
  readonly reportEveryMs?: number;
}

/**
 * The connections one worker holds: each one the master hands over is
 * counted, given its real client's addresses, and fed to the app (or pumped to
 * the node that owns it); the count goes to the master for the load bound,
 * and a draining worker exits once nothing is open.
 */
export class WorkerConnections {
  private active = 0;
  /** Every connection handed to this worker so far (reported with `active`, for the master's load bound). */
  private received = 0;
  /** Streams other workers' links have open here (key.reuse "forward"): a draining worker waits for them too. */
  private openStreams = 0;
  private isDraining = false;
  private report: NodeJS.Timeout | null = null;
  /** limits.perClient.maxConnections: the client of each counted connection closed since the last report. */
  private closedClients: string[] = [];

  constructor(private readonly deps: ConnectionsDeps) {}

  get draining(): boolean {
    return this.isDraining;
  }

  /** A connection from the master: its bytes already read, what the master learned, and the handle (undefined: the client left in flight). */
  take(bytes: Buffer, info: ConnectionInfo, handle: net.Socket | object | undefined): void {
    this.received++;
    connectionsReceived.inc();
    // The client can be gone while the handle was in flight: nothing to serve (but its count is released).
    if (!handle) {
      if (info.limitClient !== undefined) {
        this.closedClients.push(info.limitClient);
        this.reportActive();
      }
      return;
    }
    // The master sends raw TCP handles (as Node's cluster does), or a net.Socket
    // for a connection a worker handed back; wrap a raw one as net.Server would.
    // It starts reading at once; what it reads waits in the stream behind the
    // replayed bytes below.
    const socket = handle instanceof net.Socket ? handle : socketFromHandle(handle as RawTcpHandle);
    (socket as unknown as Record<symbol, unknown>)[CONNECTION_INFO] = info;
    // A socket built from a passed handle does not inherit the server's
    // allowHalfOpen; http.Server relies on it (a client's FIN after its request
    // must not cut off the response), so copy the server's own setting.
    socket.allowHalfOpen = serverSocketOptions(this.deps.server()).allowHalfOpen;
    this.active++;
    this.reportActive();
    socket.once('close', () => {
      this.active--;
      if (info.limitClient !== undefined) this.closedClients.push(info.limitClient);
      this.reportActive();
      this.exitWhenIdle();
    });
    if (info.forward !== undefined) {
      const { forward, ...here } = info;
      forwardToOwner(socket, bytes, forward, {
        connectTimeoutMs: this.deps.peerConnectTimeoutMs,
        report: (peer, outcome) => this.deps.send({ type: 'peer', peer, outcome }),
        serveHere: () => {
          (socket as unknown as Record<symbol, unknown>)[CONNECTION_INFO] = here;
          this.serve(socket, bytes, here);
        },
      });
      return;
    }
    this.serve(socket, bytes, info);
  }

  /** A stream from another worker's link opened (true) or closed (false). */
  streamCount(open: boolean): void {
    this.openStreams += open ? 1 : -1;
    if (!open) this.exitWhenIdle();
  }

  /** Finish what is in progress, then exit; at `timeoutMs` exit anyway. */
  drain(timeoutMs: number): void {
    if (this.isDraining) return;
    this.isDraining = true;
    const server = this.deps.server();
    const httpServer = server as http.Server;
    // Finish what is in progress; idle keep-alive connections close now, busy ones after their response.
    if (typeof httpServer.closeIdleConnections === 'function') {
      // Prepended: the app may write its head synchronously in its own listener,
      // after which setHeader would throw.
      server.prependListener('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
        if (!res.headersSent) res.setHeader('connection', 'close');
      });
      // No sweep at once: a connection handed over just before the drain message
      // may not have had its replayed bytes parsed yet, and would count as idle.
      const sweep = setInterval(() => httpServer.closeIdleConnections(), 100);
      sweep.unref();
    }
    this.exitWhenIdle();
    setTimeout(() => this.deps.exit(0), timeoutMs).unref();
  }

  /** Gives a received connection to the app: through the hooks, the TLS front, then the app's server. */
  private serve(socket: net.Socket, bytes: Buffer, info: ConnectionInfo): void {
    // Only what the app (or a hook for it) reads needs the real client's addresses; a pumped socket does not.
    applyProxyAddresses(socket, info);
    for (const hook of this.deps.connectionHooks) {
      if (hook(socket, bytes, info)) {
        // The app's http server sets TCP_NODELAY on the sockets it is given; a
        // hook that keeps the socket (key.reuse framing) must do it itself.
        socket.setNoDelay(true);
        return;
      }
    }
    // Replay what the master read, in front of anything read since.
    if (bytes.length > 0) socket.unshift(bytes);
    const target = this.deps.front();
    applySocketOptions(socket, target);
    target.emit('connection', socket);
  }

  /** Reports the open-connection count to the master, at most every `reportEveryMs`. */
  private reportActive(): void {
    if (this.report !== null) return;
    this.report = setTimeout(() => {
      this.report = null;
      const closed = this.closedClients;
      this.closedClients = [];
      const count = this.active;
      this.deps.send(closed.length === 0 ? { type: 'active', count, received: this.received } : { type: 'active', count, received: this.received, closedClients: closed });
      openConnections.set(count);
    }, this.deps.reportEveryMs ?? 50);
  }

  /** A draining worker exits once no client connection and no stream from another worker is open. */
  private exitWhenIdle(): void {
    if (this.isDraining && this.active === 0 && this.openStreams === 0) this.deps.exit(0);
  }
}

/**
 * Makes the app see the real client: after an honoured PROXY header,
 * `remoteAddress`/`remotePort` are its source and `localAddress`/`localPort` its
 * destination; on a connection another node forwarded, the endpoints that node saw.
 */
function applyProxyAddresses(socket: net.Socket, info: ConnectionInfo): void {
  const endpoints = info.proxy ?? info.addresses;
  const source = endpoints?.source;
  const destination = endpoints?.destination;
  if (!source || !destination) return;
  shadowAddresses(socket, {
    remoteAddress: source.address,
    remotePort: source.port,
    remoteFamily: source.address.includes(':') ? 'IPv6' : 'IPv4',
    localAddress: destination.address,
    localPort: destination.port,
  });
}

/**
 * What net.Server's own accept path does to each new socket before its
 * 'connection' event, and `emit('connection')` skips: TCP_NODELAY when the
 * server has `noDelay` (http.createServer's default is true) and TCP
 * keep-alive when it has `keepAlive`. Without it every response of the app
 * would go through Nagle's algorithm, unlike the same app under node:cluster.
 */
function applySocketOptions(socket: net.Socket, target: net.Server): void {
  const options = serverSocketOptions(target);
  if (options.noDelay) socket.setNoDelay(true);
  if (options.keepAlive) socket.setKeepAlive(true, options.keepAliveInitialDelayMs);
}
