import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * A worker's own metrics. The master asks for them over IPC on `GET /metrics`
 * and shows them per worker: the runtime labels every series with its slot
 * (`worker`), so prom-client's aggregation keeps them apart. Every name starts
 * with `sticky_worker_` so the aggregated block can never collide with the
 * master's families in one exposition.
 */
export const workerRegistry = new Registry();

collectDefaultMetrics({ register: workerRegistry, prefix: 'sticky_worker_' });

/** Connections the master handed to this worker. */
export const connectionsReceived = new Counter({
  name: 'sticky_worker_connections_total',
  help: 'Client connections the master handed to the worker, per worker slot',
  registers: [workerRegistry],
});

/** Requests the worker's HTTP server parsed (HTTP apps only). */
export const requestsServed = new Counter({
  name: 'sticky_worker_requests_total',
  help: 'HTTP requests the worker received, per worker slot',
  registers: [workerRegistry],
});

/** Open client connections in the worker. */
export const openConnections = new Gauge({
  name: 'sticky_worker_open_connections',
  help: 'Open client connections in the worker, per worker slot',
  registers: [workerRegistry],
});
