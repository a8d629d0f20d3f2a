import type http from 'node:http';
import t from 'tap';
import { fieldValues, headOfRequest } from '../../src/worker/request-head.js';

t.test("headOfRequest: the fields key derivation reads, as the master's parser gives them", async (t) => {
  const req = {
    method: 'POST',
    url: '/api?x=1',
    httpVersion: '1.0',
    headers: { host: 'app.example', cookie: 'sid=1', 'x-forwarded-for': '198.51.100.7, 10.0.0.1', forwarded: 'for=203.0.113.9', upgrade: 'websocket' },
  } as unknown as http.IncomingMessage;
  t.same(headOfRequest(req), {
    method: 'POST',
    target: '/api?x=1',
    version: '1.0',
    host: 'app.example',
    cookie: 'sid=1',
    forwardedFor: ['198.51.100.7, 10.0.0.1'],
    forwarded: ['for=203.0.113.9'],
    upgrade: 'websocket',
  });
  const bare = headOfRequest({ headers: {}, httpVersion: '1.1' } as unknown as http.IncomingMessage);
  t.same([bare.method, bare.target, bare.version, bare.forwardedFor, bare.forwarded], ['GET', '/', '1.1', [], []]);
});

t.test('fieldValues: a joined field as one value, an array as it is, none as none', async (t) => {
  t.same(fieldValues(undefined), []);
  t.same(fieldValues('a, b'), ['a, b']);
  t.same(fieldValues(['a', 'b']), ['a', 'b']);
});
