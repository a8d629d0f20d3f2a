import { join } from 'node:path';
import pino from 'pino';
import { createAdminServer, listenAdmin } from './admin/server.js';
import { MasterMetrics } from './admin/metrics.js';
import { aggregateWorkerMetrics } from './admin/worker-metrics.js';
import { loadConfig } from './config/load.js';
import { Balancer } from './master/balancer.js';
import { WorkerPool } from './pool/pool.js';
import { restartOnlyChanges } from './pool/reload.js';
import { handoffImpossible, publicPathsTaken } from './node/internals.js';

/** How long PUT /workers waits for the new workers to be ready before answering 503. */
const SCALE_WAIT_MS = 60_000;

/**
 * The command (dist/master.js): load the config, start the workers, listen,
 * and handle signals. The only place that calls process.exit.
 */
async function main(): Promise<void> {
  const loaded = loadConfig(process.argv.slice(2));
  if (!loaded.ok) {
    process.stderr.write(`sticky-session-ts: ${loaded.message}\n`);
    process.exit(2);
  }
  const config = loaded.config;
  const log = pino({ level: config.log.level, base: { pid: process.pid } });
  // Once, here: the workers run on the same Node with the same environment and take the same paths.
  for (const path of publicPathsTaken()) log.warn({ node: process.version, ...path }, 'a Node internal is not used; taking the public path');
  const impossible = handoffImpossible();
  if (impossible !== null) {
    log.fatal(impossible);
    process.exit(1);
  }
  const metrics = new MasterMetrics();
  let balancer: Balancer | null = null;
  const pool = new WorkerPool(config, join(__dirname, '..', 'workers', 'runtime.js'), log, metrics, {
    onAck: (proc, id) => balancer?.onAck(proc, id),
    onExit: (proc) => balancer?.onExit(proc),
    onHandback: (proc, message, socket) => balancer?.onHandback(proc, message, socket),
    onHandbackHandle: (proc, entry, handle) => balancer?.onHandbackHandle(proc, entry, handle),
  });
  balancer = new Balancer(config, pool, log, metrics);

  pool.scaleTo(config.workerCount);
  await pool.whenAllReady();
  const address = await balancer.listen();
  log.info({ address: address.address, port: address.port, workers: pool.readyCount(), handoff: pool.handoffMode }, 'listening');

  /** Scales the pool; resolves true once every slot is ready (false when stopping). */
  const scale = async (count: number): Promise<boolean> => {
    if (pool.isStopping) return false;
    log.info({ from: pool.targetCount, to: count }, 'scaling workers');
    pool.scaleTo(count);
    // Bounded: a new slot that crash-loops must not hang PUT /workers forever.
    if (!(await pool.whenAllReady(SCALE_WAIT_MS))) {
      log.warn({ target: count, ready: pool.readyCount() }, 'scaling: not every worker is ready');
      return false;
    }
    log.info({ workers: pool.readyCount() }, 'scaled');
    return true;
  };
  if (config.admin !== false) {
    const workerMetrics = async (): Promise<string> => aggregateWorkerMetrics(await pool.collectWorkerMetrics());
    const admin = createAdminServer(pool, metrics, { scale, workerMetrics }, log);
    const adminAddress = await listenAdmin(admin, config.admin.host, config.admin.port);
    admin.unref();
    log.info({ address: adminAddress.address, port: adminAddress.port }, 'admin listening');
  }

  // Like gunicorn: TTIN one more worker, TTOU one fewer (the highest slot drains first).
  process.on('SIGTTIN', () => void scale(pool.targetCount + 1));
  process.on('SIGTTOU', () => {
    if (pool.targetCount > 1) void scale(pool.targetCount - 1);
    else log.warn({ workers: pool.targetCount }, 'SIGTTOU ignored: at least one worker stays');
  });
  /** The config the workers are forked with (SIGHUP replaces it when the file is valid). */
  let workerConfig = config;
  let reloading = false;
  process.on('SIGHUP', () => {
    if (pool.isStopping) return;
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
    if (reloading) return;
    reloading = true;
    // Re-read the file: the new workers get it; what only the master holds is named.
    const reloaded = loadConfig(process.argv.slice(2));
    let countChanged = false;
    if (!reloaded.ok) {
      log.error({ err: reloaded.message }, 'config reload failed; restarting workers with the running config');
    } else {
      const needRestart = restartOnlyChanges(config, reloaded.config);
      if (needRestart.length > 0) log.warn({ paths: needRestart }, 'config changes that need a master restart; not applied');
      countChanged = reloaded.config.workerCount !== workerConfig.workerCount;
      workerConfig = reloaded.config;
      pool.setConfig(workerConfig);
      log.level = workerConfig.log.level;
      log.info({ config: workerConfig.configPath }, 'config reloaded');
    }
    log.info({ workers: pool.slotCount }, 'rolling restart');
    pool
      .rollingRestart()
      .then(async ({ replaced, failedSlot }) => {
        log.info({ replaced, failedSlot }, 'rolling restart done');
        // workers.count changed in the file: follow it (TTIN/TTOU changes are kept otherwise).
        if (countChanged && failedSlot === null) await scale(workerConfig.workerCount);
      })
      .finally(() => (reloading = false));
  });
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: no new connections, draining workers');
    void (async () => {
      // Not awaited: once a socket was sent to a worker, net.Server#close waits
      // for the workers to report every such socket closed (internal/socket_list),
      // which only happens after they drain below — and with no worker left in its
      // list it never calls back at all. The listening handle closes at once.
      void balancer.close();
      // What the master still holds (peeking or unacknowledged) is handed off first.
      while (balancer.heldConnections > 0) await new Promise((resolve) => setTimeout(resolve, 20));
      await pool.stopAll();
      log.info('stopped');
      log.flush();
      process.exit(0);
    })();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`sticky-session-ts: ${(error as Error).message}\n`);
  process.exit(1);
});
