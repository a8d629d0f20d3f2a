import type http from 'node:http';
import type net from 'node:net';
import t from 'tap';
import { resolveConfig } from '../../../src/shared/config/load.js';
import { CONNECTION_INFO, type ConnectionInfo } from '../../../src/shared/connection-info.js';
import { hashKey } from '../../../src/shared/ring/farmhash.js';
import { pickSlot } from '../../../src/shared/ring/rendezvous.js';
import { closeRequestHook } from '../../../src/worker/reuse/close.js';
import type { ReuseContext } from '../../../src/worker/reuse/context.js';
import { setPoolView } from '../../../src/worker/reuse/destination.js';
import { offWorkerRequests } from '../../../src/worker/reuse/metrics.js';
import { offRequestHook } from '../../../src/worker/reuse/off.js';

const resolved = (() => {
  const result = resolveConfig({}, {}, null);
  if (!result.ok) throw new Error(result.message);
  return result.config;
})();

const PROXIED: ConnectionInfo = { key: '198.51.100.1', keySource: 'forwarded', worker: 0, proxy: null, peer: '127.0.0.1', peerTrusted: true };

/** A request on a socket that carries `info`, and a response that records what the hook did. */
function exchange(socket: object, forwardedFor = '198.51.100.1') {
  const headers: Record<string, string> = {};
  const req = { httpVersionMajor: 1, httpVersion: '1.1', method: 'GET', url: '/', headers: { 'x-forwarded-for': forwardedFor }, socket } as unknown as http.IncomingMessage;
  const res = { shouldKeepAlive: true, setHeader: (name: string, value: string) => (headers[name] = value) } as unknown as http.ServerResponse;
  return { req, res, headers };
}

function socketWith(info: ConnectionInfo | null): object {
  return info === null ? {} : { [CONNECTION_INFO]: info };
}

t.test('"close": Connection: close on connections that may carry other clients, nothing on the others', async (t) => {
  const hook = closeRequestHook(resolved.key, false);
  const proxied = exchange(socketWith(PROXIED));
  t.equal(hook(proxied.req, proxied.res), false, 'the request goes on to the app');
  t.equal(proxied.headers.connection, 'close');
  t.equal(proxied.res.shouldKeepAlive, false);
  for (const info of [null, { ...PROXIED, peerTrusted: false }, { ...PROXIED, keySource: 'proxy' as const }]) {
    const other = exchange(socketWith(info));
    hook(other.req, other.res);
    t.same(other.headers, {}, `untouched: ${JSON.stringify(info)}`);
  }
  const h2 = exchange(socketWith(PROXIED));
  (h2.req as { httpVersionMajor: number }).httpVersionMajor = 2;
  hook(h2.req, h2.res);
  t.same(h2.headers, {}, 'HTTP/2 has no Connection header');
});

t.test('"off": nothing changes, but a later request of another worker\'s key is counted', async (t) => {
  setPoolView(2, [1, 1], [10, 11]);
  const ctx = { slot: 0, rules: resolved.key, stickyCookie: undefined, maxHeadBytes: 16384, headTimeoutMs: 1000, server: () => ({}) as net.Server, handBack: () => {} } as ReuseContext;
  const hook = offRequestHook(ctx);
  let own = '';
  let other = '';
  for (let i = 0; other === '' || own === ''; i++) {
    const key = `203.0.113.${i}`;
    if (pickSlot(hashKey(key), 2) === 0) own ||= key;
    else other ||= key;
  }
  const before = (await offWorkerRequests.get()).values[0]?.value ?? 0;
  const socket = socketWith(PROXIED);
  for (const key of [other, own, other]) {
    const { req, res, headers } = exchange(socket, key);
    t.equal(hook(req, res), false);
    t.same(headers, {});
  }
  const after = (await offWorkerRequests.get()).values[0]?.value ?? 0;
  t.equal(after - before, 1, 'the first request is the connection’s own; of the later two, one belongs elsewhere');
});
