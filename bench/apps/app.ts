import cluster from 'node:cluster';
import type http from 'node:http';

/**
 * The one app every contender of the side-by-side (bench/compare.ts) serves: a
 * trivial JSON answer naming the worker and pid that served it, so the
 * stickiness check can see where a key landed. A request listener, so our
 * runtime loads it as `workers.app` and the peers' launchers wrap it in
 * `http.createServer`.
 *
 * The worker number: our slot (STICKY_SLOT, set by the pool), else the
 * launcher's BENCH_WORKER, else the cluster worker id.
 */
const worker = Number(process.env.STICKY_SLOT ?? process.env.BENCH_WORKER ?? (cluster.worker ? cluster.worker.id - 1 : 0));

export default function app(req: http.IncomingMessage, res: http.ServerResponse): void {
  req.resume();
  const body = JSON.stringify({ ok: true, worker, pid: process.pid });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
