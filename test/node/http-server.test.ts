import http from 'node:http';
import net from 'node:net';
import t, { type Test } from 'tap';
import { startTimeoutChecker } from '../../src/node/http-server.js';
import { canary } from './canary.js';

/** An http.Server fed by emit('connection') from a plain listener, as the worker runtime feeds the app's. */
async function fedServer(t: Test, start: boolean): Promise<number> {
  const server = http.createServer((_req, res) => res.end('ok'));
  server.headersTimeout = 300;
  server.requestTimeout = 300;
  if (start) startTimeoutChecker(server, 50);
  const feeder = net.createServer((socket) => server.emit('connection', socket));
  await new Promise<void>((resolve) => feeder.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    feeder.close();
    server.close();
  });
  return (feeder.address() as net.AddressInfo).port;
}

/** Sends half a head and reads until the server closes, or 3 s pass. */
async function stalledHead(port: number): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  socket.write('GET / HTTP/1.1\r\nHost: x\r\n');
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 3000);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  socket.destroy();
  return text;
}

t.test("connectionsCheckingInterval + 'listening': a server that never listened times out a stalled head", async (t) => {
  const text = await stalledHead(await fedServer(t, true));
  canary(t, "http.Server checker started on 'listening'", /^HTTP\/1\.1 408/.test(text), `the stalled head got a 408 (got ${JSON.stringify(text.slice(0, 40))})`);
});

t.test('without the checker the same server never answers a stalled head (what the start is for)', async (t) => {
  const text = await stalledHead(await fedServer(t, false));
  t.equal(text, '', 'no 408 within 3 s');
});
