import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { SlotChoice } from '../../shared/placement.js';
import { hashKey } from '../../shared/ring/farmhash.js';
import type { SlotView } from '../supervisor/pool.js';
import type { MasterMetrics } from './metrics.js';

/** Largest body `PUT /workers` reads. */
const MAX_ADMIN_BODY_BYTES = 4096;

/** Largest worker count `PUT /workers` accepts (the ring's slot limit). */
const MAX_WORKERS = 1024;

/** What the admin API reads from the pool (WorkerPool implements it). */
export interface AdminPool {
  /** Slots whose worker takes connections. */
  readyCount(): number;
  /** One entry per slot, lowest first. */
  view(): SlotView[];
  /** Where a key hash goes now (the balancer's own placement). */
  choose(keyHash: number): SlotChoice;
}

/** What the admin API can ask the master to do. */
export interface AdminActions {
  /**
   * Scales to `count` workers; resolves true when they are ready, false when
   * the master is stopping (or the wait was cut short).
   */
  scale(count: number): Promise<boolean>;
  /** Extra metrics text appended to the master's (the workers' aggregated metrics). */
  workerMetrics(): Promise<string>;
  /** Many nodes: the member view and the owner of a key (null: one node). */
  readonly cluster?: AdminCluster | null;
}

/** What the admin API reads from the cluster (Cluster implements it). */
export interface AdminCluster {
  readonly self: string;
  view(): unknown;
  ownerOf(keyHash: number): string;
}

/**
 * The admin API: `GET /healthz`, `GET /workers`, `PUT /workers {"count": N}`,
 * `GET /owner?key=`, `GET /cluster`, `GET /metrics`. Loopback by default.
 */
export function createAdminServer(pool: AdminPool, metrics: MasterMetrics, actions: AdminActions, log: Logger, token?: string): http.Server {
  const authorized = token === undefined ? () => true : bearerCheck(token);
  const server = http.createServer((req, res) => {
    if (!authorized(req.headers.authorization)) {
      res.setHeader('www-authenticate', 'Bearer');
      json(res, 401, { error: 'unauthorized' });
      return;
    }
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
      if (body === null) {
        json(res, 413, { error: `body over ${MAX_ADMIN_BODY_BYTES} bytes` });
        return;
      }
      let count: unknown;
      try {
        count = (JSON.parse(body) as { count?: unknown }).count;
      } catch {
        json(res, 400, { error: 'expected JSON {"count": N}' });
        return;
      }
      if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > MAX_WORKERS) {
        json(res, 400, { error: `count: expected an integer from 1 to ${MAX_WORKERS}, got ${JSON.stringify(count ?? null)}` });
        return;
      }
      const ready = await actions.scale(count);
      json(res, ready ? 200 : 503, pool.view());
      return;
    }
    if (path === '/owner' && req.method === 'GET') {
      const key = new URL(req.url ?? '/', 'http://admin').searchParams.get('key');
      if (key === null) {
        json(res, 400, { error: 'expected ?key=<client key>' });
        return;
      }
      const keyHash = hashKey(key);
      const node = actions.cluster?.ownerOf(keyHash);
      if (node !== undefined && node !== actions.cluster?.self) {
        // Another node's slots are its own business: ask its admin API.
        json(res, 200, { node, slot: null });
        return;
      }
      const slot = pool.choose(keyHash).slot;
      json(res, slot === -1 ? 503 : 200, { ...(node === undefined ? {} : { node }), slot: slot === -1 ? null : slot });
      return;
    }
    if (path === '/cluster' && req.method === 'GET') {
      if (!actions.cluster) json(res, 404, { error: 'no cluster configured' });
      else json(res, 200, actions.cluster.view());
      return;
    }
    if (path === '/metrics' && req.method === 'GET') {
      const master = await metrics.render();
      const workers = await actions.workerMetrics();
      // Two expositions in one body: each family appears once (the workers' are
      // all sticky_worker_*), separated by a line end.
      const text = workers === '' ? master : `${master.endsWith('\n') ? master : `${master}\n`}${workers}`;
      res.writeHead(200, { 'content-type': metrics.registry.contentType });
      res.end(text);
      return;
    }
    if (path === '/healthz' || path === '/workers' || path === '/owner' || path === '/cluster' || path === '/metrics') json(res, 405, { error: 'method not allowed' });
    else json(res, 404, { error: 'not found' });
  }

  return server;
}

/** `Authorization: Bearer <token>`, compared in constant time (digests of equal length). */
function bearerCheck(token: string): (header: string | undefined) => boolean {
  const expected = createHash('sha256').update(token).digest();
  return (header) => {
    const match = header === undefined ? null : /^Bearer[ ]+(\S+)\s*$/i.exec(header);
    if (!match) return false;
    return timingSafeEqual(createHash('sha256').update(match[1] as string).digest(), expected);
  };
}

function json(res: http.ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** The request body as text, or null when it is over MAX_ADMIN_BODY_BYTES (the rest is discarded). */
function readBody(req: http.IncomingMessage): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_ADMIN_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => resolve(size > MAX_ADMIN_BODY_BYTES ? null : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Starts the admin server on `host:port`, or on the socket a previous master handed over. */
export function listenAdmin(server: http.Server, host: string, port: number, inherited?: net.Server): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(inherited ?? { host, port }, () => {
      server.removeListener('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
