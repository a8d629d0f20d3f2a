import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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

/** With many nodes: forwards to the node that owns their key, from the master's accept to the owner's accept. */
export const forwardSeconds = new Histogram({
  name: 'sticky_worker_cluster_forward_seconds',
  help: "From the master's accept to the owner's peer port accepting the forwarded connection, by peer, per worker slot",
  labelNames: ['peer'],
  buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
  registers: [workerRegistry],
});

/** With many nodes: forwarded connections this worker pumps now. */
export const forwarding = new Gauge({
  name: 'sticky_worker_cluster_forwarding',
  help: 'Connections this worker pumps to the node that owns their key, per worker slot',
  registers: [workerRegistry],
});
