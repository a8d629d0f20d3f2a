import http from 'node:http';
import net from 'node:net';
import { createLogger } from '../shared/log/logger.js';
import type { ResolvedConfig } from '../shared/config/load.js';
import { isMessage, type MasterMessage, type WorkerMessage } from '../shared/wire/ipc.js';
import { bytesFromWire, bytesToWire, infoFromWire, infoToWire } from '../shared/wire/connection.js';
import { SOCKET_READS_STOP, descriptorOf } from '../node/socket.js';
import { startTimeoutChecker } from '../node/http-server.js';
import { RESPONSE_RELAY } from '../node/outgoing.js';
import { loadApp } from './load-app.js';
import { workerStart } from './start.js';
import { assembleHooks } from './hooks.js';
import { installRequestHooks, installUpgradeHooks } from './request-hooks.js';
import { requestsServed, workerRegistry } from './metrics.js';
import { createTlsFront, type TlsFront } from './tls.js';
import type { ReuseContext } from './reuse/context.js';
import { setPoolView } from './reuse/destination.js';
import { WorkerConnections } from './connections.js';
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
/** The fd channel from the master (batched hand-offs), when it made one and this worker can read it. */
let fdReceiver: HandoffReceiver | null = null;
/** key.reuse "forward": where this worker listens for links (the master's directory), or null. */
const linkDir = start.linkDir;

function send(message: WorkerMessage): void {
  if (process.connected) process.send?.(message);
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

const connections = new WorkerConnections({
  server: () => server,
  front: () => tlsFront?.server ?? server,
  connectionHooks,
  peerConnectTimeoutMs: config.cluster?.peer.connectTimeoutMs ?? 1000,
  send,
  exit: (code) => process.exit(code),
});

function onDrain(timeoutMs: number): void {
  if (!connections.draining) tlsFront?.drain();
  connections.drain(timeoutMs);
}

const handlers: { [K in MasterMessage['type']]: (message: Extract<MasterMessage, { type: K }>, handle: net.Socket | object | undefined) => void } = {
  // Read by src/worker/main.ts before this module loads.
  start: () => {},
  connection: (message, handle) => {
    send({ type: 'ack', id: message.id });
    connections.take(bytesFromWire(message.bytes), infoFromWire(message.info), handle);
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
        accepting: () => !connections.draining,
        onStreamCount: (open) => connections.streamCount(open),
      });
    } catch (error) {
      // The others find no link here and hand such requests back through the master instead.
      log.warn({ err: (error as Error).message }, 'cannot listen for links from other workers; key.reuse "forward" hands back to this worker');
    }
  }
  // Connections in batches on the fd channel (acknowledged there), when the master made one.
  fdReceiver = openFdChannel(start.fdChannel, (entry, handle) => connections.take(entry.bytes, entry.info, handle), log);
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
