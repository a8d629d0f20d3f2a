/**
 * sticky-session 1.1.2 (devDependency): the master hashes the TCP peer address
 * and passes the socket to a worker. Behind a proxy (here: wrk on loopback,
 * every connection from 127.0.0.1) everything lands on one worker.
 *
 *   node dist/bench/apps/sticky-session.js PORT [WORKERS]
 */
import cluster from 'node:cluster';
import http from 'node:http';
import app from './app.js';
import { announceReady, launchArgs } from './launch.js';

// sticky-session ships no types; its API is one function.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const sticky = require('sticky-session') as {
  listen(server: http.Server, port: number, options?: { workers?: number }): boolean;
};

const { port, workers } = launchArgs();
const server = http.createServer(app);
if (!sticky.listen(server, port, { workers })) {
  // The primary: sticky-session emits 'listening' on our server once its own
  // listener is bound; the workers were forked then, wait until each is online.
  let online = 0;
  let bound = false;
  const check = (): void => {
    if (bound && online === workers) announceReady(port);
  };
  cluster.on('online', () => {
    online++;
    check();
  });
  server.once('listening', () => {
    bound = true;
    check();
  });
}
