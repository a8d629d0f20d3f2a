import net from 'node:net';
import t from 'tap';
import { rawConn, socketConn, type ClientConn } from '../../src/master/client-conn.js';
import { takeOverAccept } from '../../src/node/accept.js';

/** A loopback listener whose connections arrive as ClientConns of the given kind. */
async function listener(kind: 'raw' | 'socket'): Promise<{ port: number; next: () => Promise<ClientConn>; close: () => void }> {
  const queue: ClientConn[] = [];
  const waiters: Array<(conn: ClientConn) => void> = [];
  const deliver = (conn: ClientConn): void => {
    const waiter = waiters.shift();
    if (waiter) waiter(conn);
    else queue.push(conn);
  };
  const server = net.createServer({ pauseOnConnect: true }, (socket) => deliver(socketConn(socket)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  if (kind === 'raw' && !takeOverAccept(server, (handle) => deliver(rawConn(handle)), () => {})) throw new Error('raw accept is off on this Node (see test/node)');
  return {
    port: (server.address() as net.AddressInfo).port,
    next: () => (queue.length > 0 ? Promise.resolve(queue.shift() as ClientConn) : new Promise((resolve) => waiters.push(resolve))),
    close: () => server.close(),
  };
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
  });
}

for (const kind of ['raw', 'socket'] as const) {
  t.test(`${kind}: reads chunks, stops reading at once, hands over the rest untouched`, async (t) => {
    const server = await listener(kind);
    t.teardown(server.close);
    const client = await connect(server.port);
    const conn = await server.next();
    t.equal(conn.peer.replace(/^::ffff:/, ''), '127.0.0.1', 'the peer address');
    const chunks: Buffer[] = [];
    let ended = false;
    const first = new Promise<void>((resolve) =>
      conn.read(
        (chunk) => {
          chunks.push(chunk);
          // Decide on the first chunk, in the same callback, as the balancer does.
          conn.stopReading();
          resolve();
        },
        () => (ended = true),
      ),
    );
    client.write('first');
    await first;
    t.equal(Buffer.concat(chunks).toString(), 'first');
    // Bytes sent after the stop stay in the kernel for whoever reads next.
    client.write('second');
    const other = new net.Socket({ handle: (conn.sendable as { _handle?: unknown })._handle ?? conn.sendable, readable: true, writable: true } as net.SocketConstructorOpts);
    const rest = await new Promise<string>((resolve) => other.once('data', (chunk: Buffer) => resolve(chunk.toString())));
    t.equal(rest, 'second', 'nothing was read after stopReading');
    t.notOk(ended, 'no end reported');
    other.destroy();
    client.destroy();
  });

  t.test(`${kind}: the client's close is reported while reading; close() is idempotent`, async (t) => {
    const server = await listener(kind);
    t.teardown(server.close);
    const client = await connect(server.port);
    const conn = await server.next();
    const ended = new Promise<void>((resolve) => conn.read(() => {}, resolve));
    client.end();
    await ended;
    conn.close();
    conn.close();
    t.ok(conn.closed, 'closed');
  });

  t.test(`${kind}: toSocket writes an answer on a connection being read`, async (t) => {
    const server = await listener(kind);
    t.teardown(server.close);
    const client = await connect(server.port);
    const conn = await server.next();
    const answered = new Promise<string>((resolve) => {
      let text = '';
      client.on('data', (chunk: Buffer) => (text += chunk.toString()));
      client.on('close', () => resolve(text));
    });
    const refused = new Promise<void>((resolve) =>
      conn.read(() => {
        const socket = conn.toSocket();
        socket.on('error', () => {});
        socket.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
        resolve();
      }, () => {}),
    );
    client.write('GET /phpmyadmin/ HTTP/1.1\r\n\r\n');
    await refused;
    client.end();
    t.match(await answered, /^HTTP\/1\.1 404 Not Found/);
  });
}
