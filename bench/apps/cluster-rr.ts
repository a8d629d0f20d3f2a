/**
 * Node's own cluster round-robin: the primary accepts and hands every
 * connection to the next worker (SCHED_RR, the default except on Windows; set
 * explicitly so the baseline is what the ratios say). Not sticky.
 *
 *   node dist/bench/apps/cluster-rr.js PORT [WORKERS]
 */
import cluster from 'node:cluster';
import http from 'node:http';
import app from './app.js';
import { announceReady, launchArgs } from './launch.js';

cluster.schedulingPolicy = cluster.SCHED_RR;
const { port, workers } = launchArgs();

if (cluster.isPrimary) {
  let listening = 0;
  for (let i = 0; i < workers; i++) {
    cluster.fork().on('listening', () => {
      if (++listening === workers) announceReady(port);
    });
  }
} else {
  http.createServer(app).listen(port, '127.0.0.1');
}
