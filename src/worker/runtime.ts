import http from 'node:http';
import net from 'node:net';
import { createLogger } from '../shared/log/logger.js';
import type { ResolvedConfig } from '../shared/config/load.js';
import { CONNECTION_INFO, type ConnectionInfo } from '../shared/connection-info.js';
import { isMessage, type MasterMessage, type WorkerMessage } from '../shared/wire/ipc.js';
import { bytesFromWire, bytesToWire, infoFromWire, infoToWire } from '../shared/wire/connection.js';
import { SOCKET_READS_STOP, descriptorOf, serverSocketOptions, shadowAddresses } from '../node/socket.js';
import { socketFromHandle, type RawTcpHandle } from '../node/tcp-handle.js';
import { startTimeoutChecker } from '../node/http-server.js';
import { RESPONSE_RELAY } from '../node/outgoing.js';
import { loadApp } from './load-app.js';
import { workerStart } from './start.js';
import { assembleHooks } from './hooks.js';
import { installRequestHooks, installUpgradeHooks } from './request-hooks.js';
import { connectionsReceived, openConnections, requestsServed, workerRegistry } from './metrics.js';
import { createTlsFront, type TlsFront } from './tls.js';
import type { ReuseContext } from './reuse/context.js';
import { setPoolView } from './reuse/destination.js';
import { forwardToOwner } from './peer-forward.js';
import { openFdChannel } from './receive.js';
import { listenForLinks } from './link/back.js';
import { linkPath } from './link/frames.js';
import type { HandoffReceiver } from './receive.js';

/**
 * The worker runtime: started by the master through node:cluster. It loads the
 * app, then feeds it the connections the master hands over, replaying the bytes
 * the master already read first, byte for byte. It never calls `listen()`.
 */

const start = workerStart();
const config: ResolvedConfig = start.config;
const slot = start.slot;
const log = createLogger(config.log, { pid: process.pid, worker: slot });
// Each worker's series carry its slot, so /metrics shows them per worker.
workerRegistry.setDefaultLabels({ worker: String(slot) });

let server: net.Server;
/** The TLS front when config.tls is set (src/worker/tls.ts). */
let tlsFront: TlsFront | null = null;
let active = 0;
/** Every connection handed to this worker so far (reported with `active`, for the master's load bound). */
let received = 0;
let draining = false;
let activeReport: NodeJS.Timeout | null = null;
/** The fd channel from the master (batched hand-offs), when it made one and this worker can read it. */
let fdReceiver: HandoffReceiver | null = null;
/** Streams other workers' links have open here (key.reuse "forward"): a draining worker waits for them too. */
let openStreams = 0;
/** key.reuse "forward": where this worker listens for links (the master's directory), or null. */
const linkDir = start.linkDir;

function send(message: WorkerMessage): void {
  if (process.connected) process.send?.(message);
}

/** limits.perClient.maxConnections: the client of each counted connection closed since the last report. */
let closedClients: string[] = [];

/** Reports the open-connection count to the master, at most every 50 ms. */
function reportActive(): void {
  if (activeReport !== null) return;
  activeReport = setTimeout(() => {
    activeReport = null;
    const closed = closedClients;
    closedClients = [];
    send(closed.length === 0 ? { type: 'active', count: active, received } : { type: 'active', count: active, received, closedClients: closed });
    openConnections.set(active);
  }, 50);
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

const reuseContext: ReuseContext = {
  slot,
  rules: config.key,
  stickyCookie: config.stickyCookie,
  maxHeadBytes: Math.max(config.limits.peekBytes, 16 * 1024),
  headTimeoutMs: config.limits.headersTimeoutMs,
  server: () => server,
  handBack: (socket, bytes, info, next, done) => {
    // On the fd channel when there is one: the descriptor goes in flight, then this process closes its copy.
    if (fdReceiver?.handBack(descriptorOf(socket), bytes, info, next, done)) return;
    if (!process.connected || !process.send) return done(new Error('no IPC channel'));
    const message: WorkerMessage = { type: 'handback', id: 0, bytes: bytesToWire(bytes), info: infoToWire(info), ...next };
    // keepOpen false: Node detaches the handle from this socket and closes this
    // process's descriptor once the master has its own.
    process.send(message, socket, { keepOpen: false }, (error: Error | null) => done(error ?? null));
  },
};
const { requestHooks, connectionHooks, upgradeHooks, linkPool } = assembleHooks(config, reuseContext, {
  log,
  linkDir,
  socketReadsStop: SOCKET_READS_STOP,
  responseRelay: RESPONSE_RELAY,
});

function onConnection(bytes: Buffer, info: ConnectionInfo, handle: net.Socket | object | undefined): void {
  received++;
  connectionsReceived.inc();
  // The client can be gone while the handle was in flight: nothing to serve (but its count is released).
  if (!handle) {
    if (info.limitClient !== undefined) {
      closedClients.push(info.limitClient);
      reportActive();
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
  socket.allowHalfOpen = serverSocketOptions(server).allowHalfOpen;
  applyProxyAddresses(socket, info);
  active++;
  reportActive();
  socket.once('close', () => {
    active--;
    if (info.limitClient !== undefined) closedClients.push(info.limitClient);
    reportActive();
    exitWhenIdle();
  });
  if (info.forward !== undefined) {
    const { forward, ...here } = info;
    forwardToOwner(socket, bytes, forward, {
      connectTimeoutMs: config.cluster?.peer.connectTimeoutMs ?? 1000,
      report: (peer, outcome) => send({ type: 'peer', peer, outcome }),
      serveHere: () => {
        (socket as unknown as Record<symbol, unknown>)[CONNECTION_INFO] = here;
        serve(socket, bytes, here);
      },
    });
    return;
  }
  serve(socket, bytes, info);
}

/** Gives a received connection to the app: through the hooks, the TLS front, then the app's server. */
function serve(socket: net.Socket, bytes: Buffer, info: ConnectionInfo): void {
  for (const hook of connectionHooks) {
    if (hook(socket, bytes, info)) {
      // The app's http server sets TCP_NODELAY on the sockets it is given; a
      // hook that keeps the socket (key.reuse framing) must do it itself.
      socket.setNoDelay(true);
      return;
    }
  }
  // Replay what the master read, in front of anything read since.
  if (bytes.length > 0) socket.unshift(bytes);
  // With config.tls the TLS front decrypts first, then feeds the app's server.
  const target = tlsFront?.server ?? server;
  applySocketOptions(socket, target);
  target.emit('connection', socket);
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

function onDrain(timeoutMs: number): void {
  if (draining) return;
  draining = true;
  tlsFront?.drain();
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
  exitWhenIdle();
  setTimeout(() => process.exit(0), timeoutMs).unref();
}

/** A draining worker exits once no client connection and no stream from another worker is open. */
function exitWhenIdle(): void {
  if (draining && active === 0 && openStreams === 0) process.exit(0);
}

const handlers: { [K in MasterMessage['type']]: (message: Extract<MasterMessage, { type: K }>, handle: net.Socket | object | undefined) => void } = {
  // Read by src/worker/main.ts before this module loads.
  start: () => {},
  connection: (message, handle) => {
    send({ type: 'ack', id: message.id });
    onConnection(bytesFromWire(message.bytes), infoFromWire(message.info), handle);
  },
  drain: (message) => onDrain(message.timeoutMs),
  'reload-tls': () => tlsFront?.reload(),
  'pool-view': (message) => {
    setPoolView(message.slotCount, message.ready, message.pids, message.full);
    if (message.pids) linkPool?.retain(message.pids);
  },
  metrics: (message) => {
    void workerRegistry.getMetricsAsJSON().then((metrics) => send({ type: 'metrics', id: message.id, metrics }));
  },
};

async function main(): Promise<void> {
  server = await loadApp(config.appPath, (listener) => http.createServer(listener));
  if (server instanceof http.Server) {
    server.headersTimeout = config.limits.headersTimeoutMs;
    server.requestTimeout = config.limits.requestTimeoutMs;
    // The checker runs every connectionsCheckingInterval (30 s by default), so a
    // 10 s headersTimeout would fire after up to 40 s; check at a tenth of it.
    startTimeoutChecker(server, Math.max(100, Math.floor(config.limits.headersTimeoutMs / 10)));
  }
  // Counted among the app's listeners, so requests a hook answers (inspection
  // refusals, hand-backs) are not counted as served.
  server.on('request', () => requestsServed.inc());
  installRequestHooks(server, requestHooks);
  installUpgradeHooks(server, upgradeHooks);
  if (config.tls) tlsFront = createTlsFront(server, config.tls, { handshakeTimeoutMs: config.limits.peekTimeoutMs, headersTimeoutMs: config.limits.headersTimeoutMs }, log);
  process.on('message', (message: unknown, handle: unknown) => {
    if (!isMessage<MasterMessage>(message)) return;
    const handler = handlers[message.type] as ((m: MasterMessage, h: net.Socket | object | undefined) => void) | undefined;
    // A message type this runtime does not know (a newer master during a rolling
    // upgrade) is ignored rather than crashing the worker.
    if (handler) handler(message, handle as net.Socket | object | undefined);
  });
  // key.reuse "forward": other workers relay requests here; listening before 'ready' (the master names this worker to them after it).
  if (linkPool !== null && linkDir !== null) {
    try {
      await listenForLinks(linkPath(linkDir, process.pid), {
        slot,
        server: () => server,
        accepting: () => !draining,
        onStreamCount: (open) => {
          openStreams += open ? 1 : -1;
          if (!open) exitWhenIdle();
        },
      });
    } catch (error) {
      // The others find no link here and hand such requests back through the master instead.
      log.warn({ err: (error as Error).message }, 'cannot listen for links from other workers; key.reuse "forward" hands back to this worker');
    }
  }
  // Connections in batches on the fd channel (acknowledged there), when the master made one.
  fdReceiver = openFdChannel(start.fdChannel, (entry, handle) => onConnection(entry.bytes, entry.info, handle), log);
  process.on('SIGTERM', () => onDrain(config.workers.drainTimeoutMs));
  // SIGINT reaches the whole process group on Ctrl-C; the master decides when workers stop.
  process.on('SIGINT', () => {});
  send({ type: 'ready', fdChannel: fdReceiver !== null });
  // While this timer fires the event loop turns; when it stops (a blocked loop, SIGSTOP) the master routes around this worker.
  setInterval(() => send({ type: 'heartbeat' }), config.workers.heartbeatMs).unref();
}

main().catch((error: unknown) => {
  // The stack goes to the master: on the first start it prints it and exits instead of respawning.
  const stack = error instanceof Error ? (error.stack ?? error.message) : String(error);
  log.fatal({ err: stack }, 'worker failed to start');
  if (!process.connected || !process.send) process.exit(1);
  process.send({ type: 'failed', error: stack } satisfies WorkerMessage, undefined, {}, () => process.exit(1));
});
