import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import t from 'tap';
import type { ResolvedConfig } from '../../src/shared/config/load.js';
import { resolveConfig } from '../../src/shared/config/load.js';
import { edgeHooks } from '../../src/worker/inspect.js';
import { installRequestHooks } from '../../src/worker/request-hooks.js';

function config(input: Record<string, unknown>): ResolvedConfig {
  const result = resolveConfig(input, {}, null);
  if (!result.ok) throw new Error(result.message);
  return result.config;
}

/** A log that keeps its lines. */
function memoryLog(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (text: string) => lines.push(JSON.parse(text) as Record<string, unknown>) });
  return { log, lines };
}

/** An app server behind the hooks, listening on loopback for the test; counts what the app saw. */
async function serve(t: { teardown(fn: () => unknown): void }, hooksConfig: ResolvedConfig, log: pino.Logger): Promise<{ port: number; seen: string[] }> {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.end('app');
  });
  installRequestHooks(server, edgeHooks(hooksConfig, log));
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  t.teardown(() => new Promise<void>((done) => server.close(() => done())));
  return { port: (server.address() as AddressInfo).port, seen };
}

function get(port: number, method: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((done, fail) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers: { host: 'example.com', ...headers }, agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', fail);
    req.end();
  });
}

t.test('no inspect and no accessLog: no hook at all', async (t) => {
  t.same(edgeHooks(config({}), pino({ level: 'silent' })), []);
});

t.test('inspect: refused requests never reach the app, are answered, logged with the real client', async (t) => {
  const { log, lines } = memoryLog();
  const { port, seen } = await serve(t, config({ inspect: { methods: ['GET', 'HEAD'], paths: { allow: ['^/api(/|$)'] } } }), log);
  t.equal((await get(port, 'GET', '/api/a')).status, 200);
  const refused = await get(port, 'GET', '/phpmyadmin/', { 'x-forwarded-for': '203.0.113.50' });
  t.equal(refused.status, 404);
  t.equal(refused.body, '404 Not Found\n');
  t.equal(refused.headers.connection, 'close');
  const head = await get(port, 'HEAD', '/nope');
  t.equal(head.status, 404);
  t.equal(head.body, '', 'no body after HEAD');
  const propfind = await get(port, 'DELETE', '/api/a');
  t.equal(propfind.status, 405);
  t.equal(propfind.headers.allow, 'GET, HEAD');
  t.same(seen, ['GET /api/a'], 'the app saw only the allowed request');
  const refusals = lines.filter((l) => l.msg === 'request refused');
  t.equal(refusals.length, 3, 'one line per refusal');
  // 127.0.0.1 is trusted by default: its X-Forwarded-For names the client.
  t.match(refusals[0], { client: '203.0.113.50', method: 'GET', path: '/phpmyadmin/', rule: 'path-allow', status: 404, where: 'worker' });
  t.match(refusals[2], { client: '127.0.0.1', rule: 'method', status: 405 });
});

t.test('accessLog: one line per request, refused ones included', async (t) => {
  const { log, lines } = memoryLog();
  const { port } = await serve(t, config({ accessLog: true, inspect: { paths: { deny: ['^/admin'] } } }), log);
  await get(port, 'GET', '/a?b=c', { 'x-forwarded-for': '198.51.100.9, 10.0.0.1' });
  await get(port, 'GET', '/admin');
  const access = lines.filter((l) => l.msg === 'request');
  t.equal(access.length, 2);
  t.match(access[0], { client: '10.0.0.1', method: 'GET', url: '/a?b=c', status: 200 }, 'right-most X-Forwarded-For entry (hops 1)');
  t.type(access[0]?.ms, 'number');
  t.match(access[1], { url: '/admin', status: 404 });
});
