/**
 * @socket.io/sticky 2.0.1 (devDependency), used as its README shows, with the
 * plain http server standing in for socket.io's `io` (setupWorker uses only
 * `io.httpServer` and `io.engine`'s 'connection' event, which the bench never
 * triggers: no socket.io session is opened, so an inert emitter stands in). The primary parses the first chunk as text and balances by
 * least-connection (the default), and the worker side sets `Connection: close`
 * on every response (its design: a connection must not carry another session).
 *
 *   node dist/bench/apps/socketio-sticky.js PORT [WORKERS]
 */
import cluster from 'node:cluster';
import { EventEmitter } from 'node:events';
import http from 'node:http';
import { setupMaster, setupWorker } from '@socket.io/sticky';
import app from './app.js';
import { announceReady, launchArgs } from './launch.js';

const { port, workers } = launchArgs();

if (cluster.isPrimary) {
  const httpServer = http.createServer();
  setupMaster(httpServer, { loadBalancingMethod: 'least-connection' });
  // As its README says: keeps the first chunk a Buffer over IPC.
  cluster.setupPrimary({ serialization: 'advanced' });
  let online = 0;
  let bound = false;
  const check = (): void => {
    if (bound && online === workers) announceReady(port);
  };
  for (let i = 0; i < workers; i++) {
    cluster.fork().on('message', (message: unknown) => {
      if (message === 'bench-online') {
        online++;
        check();
      }
    });
  }
  httpServer.listen(port, '127.0.0.1', () => {
    bound = true;
    check();
  });
} else {
  const httpServer = http.createServer(app);
  setupWorker({ httpServer, engine: new EventEmitter() } as never);
  process.send?.('bench-online');
}
