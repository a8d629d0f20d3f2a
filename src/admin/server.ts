import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { WorkerPool } from '../pool/pool.js';
import type { MasterMetrics } from './metrics.js';

/** Largest body `PUT /workers` reads. */
const MAX_ADMIN_BODY_BYTES = 4096;

/** What the admin API can ask the master to do. */
export interface AdminActions {
  /** Scales to `count` workers; resolves when they are ready. */
  scale(count: number): Promise<void>;
  /** Extra metrics text appended to the master's (the workers' aggregated metrics). */
  workerMetrics(): Promise<string>;
}

/**
 * The admin API (shared/DESIGN.md): `GET /healthz`, `GET /workers`,
 * `PUT /workers {"count": N}`, `GET /metrics`. Loopback by default.
 */
export function createAdminServer(pool: WorkerPool, metrics: MasterMetrics, actions: AdminActions, log: Logger): http.Server {
  const server = http.createServer((req, res) => {
    void handle(req, res).catch((error: unknown) => {
      log.error({ err: (error as Error).message }, 'admin request failed');
      if (!res.headersSent) json(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz' && req.method === 'GET') {
      const workers = pool.readyCount();
      json(res, workers > 0 ? 200 : 503, { status: workers > 0 ? 'ok' : 'unavailable', workers });
      return;
    }
    if (path === '/workers' && req.method === 'GET') {
      json(res, 200, pool.view());
      return;
    }
    if (path === '/workers' && req.method === 'PUT') {
      const body = await readBody(req);
      let count: unknown;
      try {
        count = (JSON.parse(body) as { count?: unknown }).count;
      } catch {
        json(res, 400, { error: 'expected JSON {"count": N}' });
        return;
      }
      if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > 1024) {
        json(res, 400, { error: `count: expected a positive integer, got ${JSON.stringify(count ?? null)}` });
        return;
      }
      await actions.scale(count);
      json(res, 200, pool.view());
      return;
    }
    if (path === '/metrics' && req.method === 'GET') {
      const text = (await metrics.registry.metrics()) + (await actions.workerMetrics());
      res.writeHead(200, { 'content-type': metrics.registry.contentType });
      res.end(text);
      return;
    }
    json(res, path === '/healthz' || path === '/workers' || path === '/metrics' ? 405 : 404, { error: 'not found' });
  }

  return server;
}

function json(res: http.ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_ADMIN_BODY_BYTES) {
        reject(new Error('admin body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Starts the admin server on `host:port`. */
export function listenAdmin(server: http.Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => resolve(server.address() as AddressInfo));
  });
}
