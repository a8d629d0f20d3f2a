import type http from 'node:http';
import pino from 'pino';
import t from 'tap';
import { CONNECTION_INFO } from '../../src/shared/connection-info.js';
import { CidrList } from '../../src/shared/ip/address.js';
import { accessLogHook, requestClient } from '../../src/worker/access-log.js';
import { PROXIED } from '../helpers/worker.js';

const TRUSTED = CidrList.parse(['127.0.0.0/8']);

function request(remoteAddress: string, headers: Record<string, string>, proxySource?: string): http.IncomingMessage {
  const socket: Record<string | symbol, unknown> = { remoteAddress };
  if (proxySource !== undefined) socket[CONNECTION_INFO] = { ...PROXIED, proxy: { source: { address: proxySource, port: 1 }, destination: null, tlvs: {} } };
  return { socket, headers, method: 'GET', url: '/x' } as unknown as http.IncomingMessage;
}

t.test("the real client of each request: the PROXY source, else this request's trusted X-Forwarded-For entry, else the peer", async (t) => {
  t.equal(requestClient(request('203.0.113.9', { 'x-forwarded-for': '198.51.100.1' }, '203.0.113.9'), TRUSTED, 1), '203.0.113.9', 'PROXY wins');
  t.equal(requestClient(request('127.0.0.1', { 'x-forwarded-for': '10.9.9.9, 198.51.100.1' }), TRUSTED, 1), '198.51.100.1', 'a trusted proxy: its entry, one hop from the right');
  t.equal(requestClient(request('127.0.0.1', { 'x-forwarded-for': '10.9.9.9, 198.51.100.1' }), TRUSTED, 2), '10.9.9.9', 'two trusted hops');
  t.equal(requestClient(request('127.0.0.1', { forwarded: 'for=198.51.100.2' }), TRUSTED, 1), '198.51.100.2', 'RFC 7239 Forwarded without X-Forwarded-For');
  t.equal(requestClient(request('192.0.2.50', { 'x-forwarded-for': '198.51.100.1' }), TRUSTED, 1), '192.0.2.50', 'an untrusted peer writes what it likes: ignored');
});

t.test('one line per request once its response is sent: client, method, URL, status, ms', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const hook = accessLogHook(pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) }), TRUSTED, 1);
  const listeners: Record<string, () => void> = {};
  const res = {
    statusCode: 204,
    writableFinished: true,
    once: (event: string, fn: () => void) => (listeners[event] = fn),
    removeListener: (event: string) => delete listeners[event],
  } as unknown as http.ServerResponse;
  t.equal(hook(request('127.0.0.1', { 'x-forwarded-for': '198.51.100.1' }), res, () => {}), false, 'the request goes on to the app');
  t.equal(lines.length, 0, 'nothing before the response');
  listeners.finish?.();
  listeners.close?.();
  t.equal(lines.length, 1, 'one line, even with close after finish');
  t.match(lines[0], { client: '198.51.100.1', method: 'GET', url: '/x', status: 204, msg: 'request' });
  t.type(lines[0]?.ms, 'number');
});
