import type { AddressInfo, Server } from 'node:net';
import { CodedError } from '../shared/errors.js';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { createLogger } from '../shared/log/logger.js';
import { createAdminServer, listenAdmin } from './admin/server.js';
import { MasterMetrics } from './admin/metrics.js';
import { aggregateWorkerMetrics } from './admin/worker-metrics.js';
import type { z } from 'zod';
import type { configSchema } from '../shared/config/schema.js';
import { validateConfig, type ResolvedConfig } from '../shared/config/load.js';
import { Balancer } from './balancer.js';
import { Cluster } from './cluster/cluster.js';
import { handoffImpossible, publicPathsTaken } from '../node/internals.js';
import { loadFdPass } from '../shared/wire/fd-channel.js';
import { WorkerPool, type SlotView } from './supervisor/pool.js';
import { restartOnlyChanges } from './supervisor/reload.js';

/** How long a scale waits for the new workers to be ready before it resolves false. */
const SCALE_WAIT_MS = 60_000;

/** What {@link startBalancer} takes: the config file's object (every key optional, the same schema). */
export type BalancerOptions = z.input<typeof configSchema>;

/** A configuration or start-up failure of {@link startBalancer}: `code` says which (src/shared/errors.ts). */
export class BalancerStartError extends CodedError<'ERR_CONFIG' | 'ERR_APP_START' | 'ERR_LISTEN' | 'ERR_UNSAFE_RUNTIME'> {}

/** A running balancer (the master of a cluster of workers). */
export interface RunningBalancer {
  /** Where the balancer listens. */
  address(): AddressInfo;
  /** One entry per worker slot, lowest first (what `GET /workers` answers). */
  workers(): SlotView[];
  /** Scales to `count` workers; resolves true once every slot is ready (false when stopping or after a minute). */
  scale(count: number): Promise<boolean>;
  /**
   * Rolling restart, one worker at a time, each new one ready before the old
   * one drains; with `options`, the new workers get that config (validated
   * like the first; what only a restart of the master can change is logged and
   * kept). Certificates reload in place on the running workers first.
   */
  reload(options?: BalancerOptions): Promise<{ readonly replaced: number; readonly failedSlot: number | null }>;
  /** Stops accepting, hands off what is held, drains every worker; resolves when all have exited. */
  close(): Promise<void>;
  /** The validated config in effect. */
  readonly config: ResolvedConfig;
  /** The master's logger (pino, JSON lines on stdout). */
  readonly log: Logger;
}

/**
 * Starts the balancer in this process: validates `options` with the config
 * file's schema (relative paths resolve from the current directory), forks
 * the workers and resolves once it listens with every worker ready. This
 * process becomes the cluster primary. Rejects with a
 * {@link BalancerStartError} for a bad config.
 */
export function startBalancer(options: BalancerOptions = {}): Promise<RunningBalancer> {
  try {
    return startResolved(resolved(options, null));
  } catch (error) {
    return Promise.reject(error as Error);
  }
}

/** A running balancer as the command line drives it: it reloads with a config read from its file. */
export interface CliBalancer extends RunningBalancer {
  reloadResolved(next?: ResolvedConfig): Promise<{ readonly replaced: number; readonly failedSlot: number | null }>;
  /**
   * {@link RunningBalancer.close}, logged with the signal that asked for it.
   * `graceMs`: first go on serving that long with the health check failing.
   */
  closeFor(signal: NodeJS.Signals | 'upgrade', graceMs?: number): Promise<void>;
  /** The worker count the pool is heading for (slots still draining are not counted). */
  targetCount(): number;
  /** The listening sockets, to hand to a new master (an upgrade). */
  listeners(): Listeners;
}

/** The sockets a master listens on. */
export interface Listeners {
  readonly listen: Server;
  readonly admin: Server | null;
  /** The peer port (with `cluster`). */
  readonly peer: Server | null;
}

/**
 * Where a new master's listening sockets come from on an upgrade: `take`
 * asks for them and calls `onListener` for each as it arrives (the caller
 * listens on it at once, in that call: until then the socket accepts into
 * nothing), resolving once all were given.
 */
export interface ListenerSource {
  take(onListener: (name: keyof Listeners, server: Server) => void): Promise<void>;
}

/** {@link startBalancer} for a config already validated (the command line's, with paths relative to its file). */
export async function startResolved(config: ResolvedConfig, inherited: ListenerSource | null = null): Promise<CliBalancer> {
  const log = createLogger(config.log, { pid: process.pid });
  // Once, here: the workers run on the same Node with the same environment and take the same paths.
  for (const path of publicPathsTaken()) log.warn({ node: process.version, ...path }, 'a Node internal is not used; taking the public path');
  if (config.workers.handoff === 'auto' && loadFdPass() === null) {
    // Said on every start: an install without a C++ toolchain works, but slower, and should not go unnoticed.
    log.warn(
      { handoff: 'ipc', addon: 'native/fdpass.c' },
      "the fd-passing addon is not built (no C++ toolchain at install, or not Linux): connections go to workers over Node's IPC channel, one message and acknowledgement each instead of batches; run `npm rebuild sticky-session-ts` with g++, make and python3 installed",
    );
  }
  const impossible = handoffImpossible();
  if (impossible !== null) {
    log.fatal(impossible);
    throw new BalancerStartError('ERR_UNSAFE_RUNTIME', impossible);
  }

  const metrics = new MasterMetrics();
  let balancer: Balancer | null = null;
  /** Until every first worker is ready, a worker whose app does not load ends the start (instead of a respawn loop). */
  let started = false;
  let failStart: (error: BalancerStartError) => void = () => {};
  const startFailed = new Promise<never>((_resolve, reject) => (failStart = reject));
  startFailed.catch(() => {});
  const cluster = config.cluster ? new Cluster(config.cluster, log, metrics.registry) : null;
  const pool = new WorkerPool(config, join(__dirname, '..', 'worker', 'main.js'), log, metrics, {
    onAck: (proc, id) => balancer?.routing.onAck(proc, id),
    onExit: (proc) => balancer?.routing.onExit(proc),
    onHandback: (proc, message, socket) => balancer?.routing.onHandback(proc, message, socket),
    onHandbackHandle: (proc, entry, handle) => balancer?.routing.onHandbackHandle(proc, entry, handle),
    onClientsClosed: (proc, clients) => balancer?.onClientsClosed(proc, clients),
    onPeerReport: (peer, outcome) => cluster?.onPeerReport(peer, outcome),
    onStartFailed: (proc) => {
      if (started) return;
      const exit = proc.worker.process.exitCode ?? proc.worker.process.signalCode;
      failStart(
        new BalancerStartError(
          'ERR_APP_START',
          proc.failure !== null
            ? `the worker app ${config.appPath} failed to load:\n${proc.failure}`
            : `worker ${proc.slot} (pid ${proc.pid}) exited${exit === null ? '' : ` (${exit})`} before it was ready, while loading ${config.appPath}`,
        ),
      );
    },
  });
  balancer = new Balancer(config, pool, log, metrics, cluster);
  const running = balancer;
  let admin: ReturnType<typeof createAdminServer> | null = null;

  /** A start that cannot finish leaves nothing behind: no worker, no listener, no socket file. */
  const abandon = async (error: BalancerStartError): Promise<never> => {
    log.fatal({ code: error.code, err: error.message }, 'start failed');
    admin?.close();
    await running.close().catch(() => {});
    await cluster?.stop().catch(() => {});
    await pool.stopAll();
    log.flush();
    throw error;
  };
  pool.scaleTo(config.workerCount);
  try {
    await Promise.race([pool.whenAllReady(), startFailed]);
  } catch (error) {
    return abandon(error as BalancerStartError);
  }
  started = true;
  if (cluster !== null) {
    // The member list before the first connection: a node that placed keys without it would own them all.
    await cluster.start();
    log.info(cluster.view(), 'cluster members');
  }

  const scale = async (count: number): Promise<boolean> => {
    if (pool.isStopping) return false;
    log.info({ from: pool.targetCount, to: count }, 'scaling workers');
    pool.scaleTo(count);
    // Bounded: a new slot that crash-loops must not hang the caller forever.
    if (!(await pool.whenAllReady(SCALE_WAIT_MS))) {
      log.warn({ target: count, ready: pool.readyCount() }, 'scaling: not every worker is ready');
      return false;
    }
    log.info({ workers: pool.readyCount() }, 'scaled');
    return true;
  };
  // Every port is bound before 'listening' is announced; any bind failure ends the start.
  const listeners: Record<keyof Listeners, ((server?: Server) => Promise<AddressInfo>) | null> = {
    listen: (server) => running.listen(server),
    admin: null,
    peer: cluster === null ? null : (server) => running.listenPeer(server),
  };
  if (config.admin !== false) {
    const { host, port, token } = config.admin;
    const workerMetrics = async (): Promise<string> => aggregateWorkerMetrics(await pool.collectWorkerMetrics());
    const adminServer = createAdminServer(pool, metrics, { scale, workerMetrics, cluster }, log, token);
    adminServer.unref();
    admin = adminServer;
    listeners.admin = (server) => listenAdmin(adminServer, host, port, server);
  }
  const adminConfig = config.admin;
  /** Each port's bind, under way or done (an upgrade starts them as the old master's sockets arrive). */
  const binds = new Map<keyof Listeners, Promise<AddressInfo>>();
  const listenOn = (name: keyof Listeners, server?: Server): void => {
    const bind = listeners[name]?.(server);
    if (bind === undefined) return;
    bind.catch(() => {}); // awaited below, in order; not an unhandled rejection meanwhile
    binds.set(name, bind);
  };
  if (inherited !== null) await inherited.take(listenOn);
  const bound = async (name: keyof Listeners, where: string): Promise<AddressInfo> => {
    if (!binds.has(name)) listenOn(name);
    try {
      return await (binds.get(name) as Promise<AddressInfo>);
    } catch (error) {
      return abandon(new BalancerStartError('ERR_LISTEN', `cannot listen on ${where}: ${describeListenError(error)}`));
    }
  };
  if (config.cluster) {
    // Before the public port: a peer may forward to this node as soon as it is in their lists.
    const peerAddress = await bound('peer', `${config.cluster.peer.host}:${config.cluster.peer.port} (peer port)`);
    log.info({ address: peerAddress.address, port: peerAddress.port, self: config.cluster.self }, 'peer port listening');
  }
  const address = await bound('listen', `${config.listen.host}:${config.listen.port}`);
  if (adminConfig !== false) {
    const adminAddress = await bound('admin', `${adminConfig.host}:${adminConfig.port} (admin API)`);
    log.info({ address: adminAddress.address, port: adminAddress.port, token: adminConfig.token !== undefined }, 'admin listening');
  }
  log.info({ address: address.address, port: address.port, workers: pool.readyCount(), handoff: pool.handoffMode, inherited: inherited !== null }, 'listening');

  /** The config the workers are forked with (a reload replaces it). */
  let workerConfig = config;
  let reloading: Promise<{ replaced: number; failedSlot: number | null }> | null = null;
  const reload = (next?: ResolvedConfig): Promise<{ replaced: number; failedSlot: number | null }> => {
    if (pool.isStopping) return Promise.resolve({ replaced: 0, failedSlot: null });
    if (config.tls) {
      // Certificate rotation: every current worker swaps its secure context in
      // place (new handshakes get the new certificate, open connections are
      // untouched); workers forked by the restart below read the files anyway.
      log.info('tls reload');
      for (let slot = 0; slot < pool.slotCount; slot++) {
        const proc = pool.worker(slot);
        if (proc) pool.send(proc, { type: 'reload-tls' }, undefined, () => {});
      }
    }
    if (reloading !== null) return reloading;
    let countChanged = false;
    if (next !== undefined) {
      const needRestart = restartOnlyChanges(config, next);
      if (needRestart.length > 0) log.warn({ paths: needRestart }, 'config changes that need a master restart; not applied');
      countChanged = next.workerCount !== workerConfig.workerCount;
      workerConfig = next;
      pool.setConfig(workerConfig);
      log.level = workerConfig.log.level;
      log.info({ config: workerConfig.configPath }, 'config reloaded');
    }
    log.info({ workers: pool.slotCount }, 'rolling restart');
    reloading = pool
      .rollingRestart()
      .then(async (result) => {
        log.info(result, 'rolling restart done');
        // workers.count changed: follow it (scale changes are kept otherwise).
        if (countChanged && result.failedSlot === null) await scale(workerConfig.workerCount);
        return result;
      })
      .finally(() => (reloading = null));
    return reloading;
  };

  let closing: Promise<void> | null = null;
  const close = (reason: Record<string, unknown> = {}, graceMs = 0): Promise<void> => {
    closing ??= (async () => {
      running.markStopping();
      if (graceMs > 0) {
        // Still serving, with the health check failing, so the load balancer takes this node out first.
        log.info({ ...reason, graceMs }, 'stopping: health check failing, still serving');
        await new Promise((resolve) => setTimeout(resolve, graceMs));
      }
      // Peers stop sending this node new keys (Redis: at their next read; a closed peer port: at once).
      await cluster?.drain().catch(() => {});
      log.info(reason, 'stopping: no new connections, draining workers');
      admin?.close();
      // Not awaited: once a socket was sent to a worker, net.Server#close waits
      // for the workers to report every such socket closed (internal/socket_list),
      // which only happens after they drain below — and with no worker left in its
      // list it never calls back at all. The listening handle closes at once.
      void running.close();
      // What the master still holds (peeking or unacknowledged) is handed off first.
      while (running.heldConnections > 0) await new Promise((resolve) => setTimeout(resolve, 20));
      // Forwarded connections are pumped by the workers: they end with the workers' drain.
      await pool.stopAll();
      await cluster?.stop().catch(() => {});
      log.info('stopped');
      log.flush();
    })();
    return closing;
  };

  return {
    address: () => address,
    workers: () => pool.view(),
    scale,
    reload: (next) => {
      try {
        return reload(next === undefined ? undefined : resolved(next, null));
      } catch (error) {
        return Promise.reject(error as Error);
      }
    },
    close: () => close(),
    closeFor: (signal, graceMs) => close({ signal }, graceMs),
    listeners: () => ({ listen: running.listener, admin, peer: running.peerListener }),
    get config() {
      return workerConfig;
    },
    log,
    reloadResolved: reload,
    targetCount: () => pool.targetCount,
  };
}

/** `EADDRINUSE (address already in use)`, the way an operator reads it. */
function describeListenError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  const reasons: Record<string, string> = { EADDRINUSE: 'address already in use', EACCES: 'permission denied (ports below 1024 need privileges)', EADDRNOTAVAIL: 'no such local address' };
  return code === undefined ? (error as Error).message : `${code}${reasons[code] ? ` (${reasons[code]})` : ''}`;
}

function resolved(options: BalancerOptions, configPath: string | null): ResolvedConfig {
  const result = validateConfig(options, {}, configPath);
  if (!result.ok) throw new BalancerStartError('ERR_CONFIG', result.message);
  return result.config;
}
