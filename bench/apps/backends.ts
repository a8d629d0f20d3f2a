/**
 * The backends HAProxy and nginx balance over: WORKERS separate node
 * processes, each listening on its own port (PORT, PORT+1, ...), each serving
 * the bench app. Separate processes, not cluster workers: cluster would route
 * every listen() through the primary.
 *
 *   node dist/bench/apps/backends.js FIRST_PORT [WORKERS]
 */
import { fork } from 'node:child_process';
import http from 'node:http';
import app from './app.js';
import { announceReady, launchArgs } from './launch.js';

const { port, workers } = launchArgs();

if (process.env.BENCH_WORKER === undefined) {
  let ready = 0;
  const children = Array.from({ length: workers }, (_, i) => {
    const child = fork(__filename, [String(port + i)], { env: { ...process.env, BENCH_WORKER: String(i) } });
    child.on('message', () => {
      if (++ready === workers) announceReady(port);
    });
    child.on('exit', () => process.exit(1));
    return child;
  });
  const stop = (): void => {
    for (const child of children) child.removeAllListeners('exit').kill('SIGTERM');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  http.createServer(app).listen(port, '127.0.0.1', () => process.send?.('listening'));
}
