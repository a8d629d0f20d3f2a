import http from 'node:http';
import net from 'node:net';
import pino from 'pino';
import t from 'tap';
import { resolveConfig, type ResolvedConfig } from '../../src/shared/config/load.js';
import { CONNECTION_INFO, connectionInfo, type ConnectionInfo } from '../../src/shared/connection-info.js';
import { workerRegistry } from '../../src/worker/metrics.js';
import { requestLimitHook } from '../../src/worker/request-limits.js';

function config(perClient: Record<string, unknown> | undefined): ResolvedConfig {
  const result = resolveConfig({ limits: perClient === undefined ? {} : { perClient }, proxyProtocol: { mode: 'optional', trustedFrom: ['127.0.0.0/8'] } }, {}, null);
  if (!result.ok) throw new Error(result.message);
  return result.config;
}

function memoryLog(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return { log: pino({ level: 'info' }, { write: (text: string) => lines.push(JSON.parse(text) as Record<string, unknown>) }), lines };
}

/** A request on a real net.Socket (whose peer is `remoteAddress`), with the master's info on it when given. */
function request(headers: Record<string, string>, info?: Partial<ConnectionInfo>, remoteAddress = '127.0.0.1'): { req: http.IncomingMessage; socket: net.Socket } {
  const socket = new net.Socket();
  Object.defineProperty(socket, 'remoteAddress', { value: remoteAddress });
  if (info !== undefined) (socket as unknown as Record<symbol, unknown>)[CONNECTION_INFO] = { key: 'k', keySource: 'forwarded', worker: 0, proxy: null, ...info };
  const req = new http.IncomingMessage(socket);
  req.headers = headers;
  return { req, socket };
}

/** A response that records its status, headers and body. */
function response(): { res: http.ServerResponse; status: () => number | null; headers: () => Record<string, unknown>; body: () => string } {
  let status: number | null = null;
  let headers: Record<string, unknown> = {};
  let body = '';
  const res = {
    writeHead: (code: number, h: Record<string, unknown>) => {
      status = code;
      headers = h;
    },
    end: (text: string) => (body = text),
  } as unknown as http.ServerResponse;
  return { res, status: () => status, headers: () => headers, body: () => body };
}

const serveHere = (): void => {};

const limited = async (): Promise<number> => ((await workerRegistry.getSingleMetric('sticky_worker_limited_requests_total')?.get())?.values ?? []).reduce((sum, value) => sum + value.value, 0);

t.test('no requestsPerSecond: no hook at all', async (t) => {
  t.equal(requestLimitHook(config(undefined), memoryLog().log), null);
  t.equal(requestLimitHook(config({ maxConnections: 3 }), memoryLog().log), null, 'connection limits are the master’s');
});

t.test("over the rate: 429 with Retry-After, logged with the real client, counted; another client is not touched", async (t) => {
  const { log, lines } = memoryLog();
  const hook = requestLimitHook(config({ requestsPerSecond: 1, requestBurst: 2 }), log);
  if (hook === null) throw new Error('expected a hook');
  const before = await limited();
  const verdicts = [1, 2].map(() => hook(request({ 'x-forwarded-for': '198.51.100.7' }).req, response().res, serveHere));
  t.same(verdicts, [false, false], 'the burst passes');
  const last = response();
  const { req } = request({ 'x-forwarded-for': '198.51.100.7' });
  let resumed = false;
  req.resume = () => ((resumed = true), req);
  t.equal(hook(req, last.res, serveHere), true, 'the third is taken by the hook');
  t.equal(last.status(), 429);
  t.ok(Number(last.headers()['retry-after']) >= 1, 'Retry-After in whole seconds');
  t.ok(last.body().length > 0);
  t.ok(resumed, 'the body is drained, never given to the app');
  t.equal(hook(request({ 'x-forwarded-for': '198.51.100.8' }).req, response().res, serveHere), false, 'another client has its own bucket');
  t.equal((await limited()) - before, 1);
  t.match(lines, [{ client: '198.51.100.7', reason: 'ERR_CLIENT_RATE', status: 429, where: 'worker', msg: 'request refused' }]);
  // A flood of refusals: counted each, logged a bounded number of times.
  for (let i = 0; i < 50; i++) hook(request({ 'x-forwarded-for': '198.51.100.7' }).req, response().res, serveHere);
  t.equal((await limited()) - before, 51);
  t.ok(lines.length > 1 && lines.length < 51, `log lines are rate-limited (${lines.length} for 51 refusals)`);
});

t.test('an exempt client is never limited', async (t) => {
  const hook = requestLimitHook(config({ requestsPerSecond: 1, requestBurst: 1, exempt: ['198.51.100.0/24'] }), memoryLog().log);
  if (hook === null) throw new Error('expected a hook');
  for (let i = 0; i < 5; i++) t.equal(hook(request({ 'x-forwarded-for': '198.51.100.9' }).req, response().res, serveHere), false);
  t.equal(hook(request({ 'x-forwarded-for': '203.0.113.1' }).req, response().res, serveHere), false);
  t.equal(hook(request({ 'x-forwarded-for': '203.0.113.1' }).req, response().res, serveHere), true, 'outside the exempt range: limited');
});

t.test("the first request is the master's client; later ones from a trusted proxy are parsed again", async (t) => {
  const hook = requestLimitHook(config({ requestsPerSecond: 1, requestBurst: 1 }), memoryLog().log);
  if (hook === null) throw new Error('expected a hook');
  // The master found 203.0.113.50; the head says otherwise, and the master's word counts for the first request.
  const first = request({ 'x-forwarded-for': '192.0.2.1' }, { firstClient: '203.0.113.50', peerTrusted: true });
  t.equal(hook(first.req, response().res, serveHere), false);
  t.equal(connectionInfo(first.socket)?.firstClient, undefined, 'used once: the info no longer carries it');
  // Next request on the same socket: another client behind the same proxy, parsed from its own head.
  const second = new http.IncomingMessage(first.socket);
  second.headers = { 'x-forwarded-for': '192.0.2.1' };
  t.equal(hook(second, response().res, serveHere), false, '192.0.2.1 has a bucket of its own');
  t.equal(hook(request({}, { firstClient: '203.0.113.50', peerTrusted: true }).req, response().res, serveHere), true, '203.0.113.50 spent its one request');
  // From a peer that is not a trusted proxy every request is the master's client, and the info stays.
  const direct = request({ 'x-forwarded-for': '192.0.2.77' }, { firstClient: '203.0.113.60', peerTrusted: false }, '203.0.113.60');
  t.equal(hook(direct.req, response().res, serveHere), false);
  t.equal(connectionInfo(direct.socket)?.firstClient, '203.0.113.60');
});
