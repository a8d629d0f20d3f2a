import { join } from 'node:path';
import pino from 'pino';
import { createAdminServer, listenAdmin } from './admin/server.js';
import { MasterMetrics } from './admin/metrics.js';
import { loadConfig } from './config/load.js';
import { Balancer } from './master/balancer.js';
import { WorkerPool } from './pool/pool.js';

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
  const metrics = new MasterMetrics();
  let balancer: Balancer | null = null;
  const pool = new WorkerPool(config, join(__dirname, '..', 'workers', 'runtime.js'), log, metrics, {
    onAck: (proc, id) => balancer?.onAck(proc, id),
    onExit: (proc) => balancer?.onExit(proc),
    onHandback: (proc, message, socket) => balancer?.onHandback(proc, message, socket),
  });
  balancer = new Balancer(config, pool, log, metrics);

  pool.scaleTo(config.workerCount);
  await pool.whenAllReady();
  const address = await balancer.listen();
  log.info({ address: address.address, port: address.port, workers: pool.readyCount() }, 'listening');

  const scale = async (count: number): Promise<void> => {
    log.info({ from: pool.targetCount, to: count }, 'scaling workers');
    pool.scaleTo(count);
    await pool.whenAllReady();
  };
  if (config.admin !== false) {
    const admin = createAdminServer(pool, metrics, { scale, workerMetrics: async () => '' }, log);
    const adminAddress = await listenAdmin(admin, config.admin.host, config.admin.port);
    admin.unref();
    log.info({ address: adminAddress.address, port: adminAddress.port }, 'admin listening');
  }

  process.on('SIGTTIN', () => void scale(pool.targetCount + 1));
  process.on('SIGTTOU', () => {
    if (pool.targetCount > 1) void scale(pool.targetCount - 1);
  });
  let reloading = false;
  process.on('SIGHUP', () => {
    if (reloading) return;
    reloading = true;
    log.info('rolling restart');
    pool
      .rollingRestart()
      .then(() => log.info('rolling restart done'))
      .finally(() => (reloading = false));
  });
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: no new connections, draining workers');
    void (async () => {
      await balancer.close();
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
