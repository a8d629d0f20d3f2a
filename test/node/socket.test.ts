import { readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import t, { type Test } from 'tap';
import { SOCKET_READS_STOP, copyShadowedAddresses, descriptorOf, sawEof, serverSocketOptions, shadowAddresses, stopSocketReads, tlsParentOf, tlsRawSocket } from '../../src/node/socket.js';
import { createTestCa, opensslMissing } from '../helpers/certs.js';
import { canary } from './canary.js';

/** A connected pair over loopback: [client, the server's socket]. */
async function pair(t: Test, options: net.ServerOpts = {}): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer(options);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const serverSide = await accepted;
  t.teardown(() => {
    client.destroy();
    serverSide.destroy();
  });
  return [client, serverSide];
}

t.test('net.Socket _read, _handle.readStop/reading: a stop in the data callback leaves every later byte unread', async (t) => {
  canary(t, 'net.Socket _read and _readableState', SOCKET_READS_STOP, 'in use (unless STICKY_NODE_PUBLIC names stop-reading)');
  const [client, serverSide] = await pair(t);
  const seen: Buffer[] = [];
  const onData = (chunk: Buffer): void => {
    seen.push(chunk);
    stopSocketReads(serverSide, onData);
  };
  serverSide.on('data', onData);
  client.write('first');
  for (let i = 0; i < 500 && seen.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  // Split writes: a stop that only paused would read these into the stream's buffer on the next tick.
  for (let i = 0; i < 20; i++) client.write(Buffer.alloc(4096, i));
  await new Promise((resolve) => setTimeout(resolve, 100));
  canary(t, 'net.Socket _handle.readStop + _read', serverSide.readableLength === 0, `nothing more was read (${serverSide.readableLength} bytes buffered)`);
  canary(t, 'net.Socket _handle.reading', (serverSide as unknown as { _handle: { reading: boolean } })._handle.reading === false, 'the handle says it is not reading');
  t.equal(Buffer.concat(seen).toString(), 'first');
});

t.test('_readableState.ended: the peer\'s FIN is seen before its bytes are consumed', async (t) => {
  const [client, serverSide] = await pair(t, { allowHalfOpen: true });
  serverSide.pause();
  client.end('last bytes');
  for (let i = 0; i < 500 && !sawEof(serverSide); i++) {
    serverSide.read(0);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  canary(t, 'net.Socket _readableState.ended', sawEof(serverSide), 'true after the FIN');
  t.equal(serverSide.readableEnded, false, "the public readableEnded is still false: 'end' has not been emitted");
  t.equal(sawEof(client), false, 'a socket without a FIN has not ended');
});

t.test('net.Socket _handle.fd', async (t) => {
  const [client] = await pair(t);
  const fd = descriptorOf(client);
  canary(t, 'net.Socket _handle.fd', Number.isInteger(fd) && fd > 2, `a descriptor number (got ${fd})`);
  client.destroy();
  t.equal(descriptorOf(client), -1, 'a destroyed socket has none');
});

t.test('net.Server allowHalfOpen, noDelay, keepAlive, keepAliveInitialDelay', async (t) => {
  const options = serverSocketOptions(http.createServer({ keepAlive: true, keepAliveInitialDelay: 3000, noDelay: true }));
  canary(t, 'net.Server noDelay', options.noDelay, 'http.createServer({ noDelay: true }) keeps it');
  canary(t, 'net.Server keepAlive', options.keepAlive, 'kept');
  canary(t, 'net.Server keepAliveInitialDelay', options.keepAliveInitialDelayMs === 3000, `kept in seconds (got ${options.keepAliveInitialDelayMs} ms)`);
  canary(t, 'net.Server allowHalfOpen', serverSocketOptions(net.createServer({ allowHalfOpen: true })).allowHalfOpen, 'kept');
  const plain = serverSocketOptions(net.createServer());
  t.same(plain, { allowHalfOpen: false, noDelay: false, keepAlive: false, keepAliveInitialDelayMs: 0 }, 'a plain net.Server has none of them');
  canary(t, 'http.Server noDelay default', serverSocketOptions(http.createServer()).noDelay, 'http.createServer sets noDelay by default');
});

t.test('address getters shadowed on a socket: the app reads the shadow through req.socket', async (t) => {
  const server = http.createServer((req, res) => res.end(`${req.socket.remoteAddress} ${req.socket.remotePort} ${req.socket.localPort}`));
  const feeder = net.createServer((socket) => {
    shadowAddresses(socket, { remoteAddress: '203.0.113.9', remotePort: 4242, remoteFamily: 'IPv4', localAddress: '198.51.100.1', localPort: 443 });
    server.emit('connection', socket);
  });
  await new Promise<void>((resolve) => feeder.listen(0, '127.0.0.1', resolve));
  t.teardown(() => feeder.close());
  const body = await new Promise<string>((resolve, reject) => {
    http.get({ port: (feeder.address() as net.AddressInfo).port, host: '127.0.0.1', agent: false }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve(text));
    }).on('error', reject);
  });
  canary(t, 'net.Socket remoteAddress/remotePort/localPort getters', body === '203.0.113.9 4242 443', `own properties shadow them (got ${body})`);
  const target = {};
  copyShadowedAddresses({ remoteAddress: 'x', unrelated: 1 }, target);
  t.same(Object.getOwnPropertyNames(target), ['remoteAddress'], 'only the address properties are copied');
});

t.test('tls.TLSSocket _parent: a server-side TLS socket wraps the raw socket it was made from', { skip: opensslMissing() ?? false }, async (t) => {
  const ca = createTestCa();
  t.teardown(() => rmSync(ca.dir, { recursive: true, force: true }));
  const cert = ca.issue('localhost');
  let raw: net.Socket | null = null;
  const server = tls.createServer({ key: readFileSync(cert.keyPath), cert: readFileSync(cert.certPath) });
  server.on('connection', (socket: net.Socket) => (raw = socket));
  const secured = new Promise<tls.TLSSocket>((resolve) => server.once('secureConnection', resolve));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const client = tls.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', ca: ca.caPem, servername: 'localhost' });
  t.teardown(() => client.destroy());
  const socket = await secured;
  canary(t, 'tls.TLSSocket _parent', raw !== null && tlsRawSocket(socket) === raw, "the TLS socket's parent is the server's raw socket");
  t.equal(tlsParentOf({}), null, 'a plain object has no parent');
  socket.destroy();
});
