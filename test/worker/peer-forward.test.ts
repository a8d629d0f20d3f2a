import { once } from 'node:events';
import { spawn } from 'node:child_process';
import net from 'node:net';
import t, { type Test } from 'tap';
import { forwardSocket, forwardToOwner, type ForwardEvents } from '../../src/worker/peer-forward.js';
import { pollUntil } from '../helpers/balancer.js';

/** A loopback listener handing out its server-side sockets (as the worker runtime receives them). */
async function entry(): Promise<{ port: number; next: () => Promise<net.Socket>; close: () => void }> {
  const queue: net.Socket[] = [];
  const waiters: Array<(socket: net.Socket) => void> = [];
  const server = net.createServer((socket) => {
    const waiter = waiters.shift();
    if (waiter) waiter(socket);
    else queue.push(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    next: () => (queue.length > 0 ? Promise.resolve(queue.shift() as net.Socket) : new Promise((resolve) => waiters.push(resolve))),
    close: () => server.close(),
  };
}

/** An owner: collects what each connection sends; `onSocket` may answer. */
async function owner(onSocket: (socket: net.Socket) => void = () => {}): Promise<{ port: number; received: Buffer[]; sockets: net.Socket[]; close: () => void }> {
  const received: Buffer[] = [];
  const sockets: net.Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.push(socket);
    const index = received.push(Buffer.alloc(0)) - 1;
    socket.on('data', (chunk) => (received[index] = Buffer.concat([received[index] as Buffer, chunk])));
    onSocket(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as net.AddressInfo).port, received, sockets, close: () => server.close() };
}

function events(): ForwardEvents & { log: string[]; ended: Promise<void> } {
  const log: string[] = [];
  let end: () => void = () => {};
  const ended = new Promise<void>((resolve) => (end = resolve));
  return {
    log,
    ended,
    connected: () => void log.push('connected'),
    unreachable: (reason) => void log.push(`unreachable ${reason}`),
    closed: () => {
      log.push('closed');
      end();
    },
  };
}

/**
 * A loopback port whose SYNs go unanswered: a listening socket that never
 * accepts (python3, backlog 0), its one-entry queue filled by `filler`.
 */
async function blackhole(t: Test): Promise<number> {
  const proc = spawn('python3', ['-c', 'import socket,sys,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(120)'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => proc.kill());
  const [line] = (await once(proc.stdout as NodeJS.ReadableStream, 'data')) as [Buffer];
  const port = Number(line.toString().trim());
  // Fill the accept queue: once it is full, the kernel drops further SYNs (tcp_abort_on_overflow is 0 by default).
  for (let i = 0; i < 4; i++) {
    const filler = net.connect(port, '127.0.0.1');
    filler.on('error', () => {});
    t.teardown(() => filler.destroy());
    await Promise.race([once(filler, 'connect'), new Promise((resolve) => setTimeout(resolve, 200))]);
  }
  return port;
}

t.test('header, the bytes already read, then every byte both ways, split however the client writes', async (t) => {
  const front = await entry();
  t.teardown(front.close);
  const back = await owner((socket) => socket.on('data', (chunk) => socket.write(Buffer.from(chunk.toString().toUpperCase()))));
  t.teardown(back.close);
  const client = net.connect(front.port, '127.0.0.1');
  await once(client, 'connect');
  const conn = await front.next();
  const ev = events();
  forwardSocket(conn, { host: '127.0.0.1', port: back.port }, Buffer.from('HEADER|'), Buffer.from('peeked|'), 1000, ev);
  // Written one byte at a time, with pauses: nothing may be lost between the connect and the pipe.
  const answers: Buffer[] = [];
  client.on('data', (chunk) => answers.push(chunk));
  const text = 'abcdefghijklmnopqrstuvwxyz';
  for (const char of text) {
    client.write(char);
    await new Promise((resolve) => setImmediate(resolve));
  }
  await pollUntil(() => (back.received[0]?.toString() === `HEADER|peeked|${text}` ? true : undefined), 10_000);
  t.equal(back.received[0]?.toString(), `HEADER|peeked|${text}`);
  await pollUntil(() => (Buffer.concat(answers).toString().endsWith(text.toUpperCase()) ? true : undefined), 10_000);
  t.equal(Buffer.concat(answers).toString(), `HEADER|peeked|${text}`.toUpperCase());
  t.same(ev.log, ['connected']);
  client.end();
  back.sockets[0]?.end();
  await ev.ended;
  t.same(ev.log, ['connected', 'closed']);
});

t.test("half-close: the client's FIN reaches the owner, whose answer still reaches the client", async (t) => {
  const front = await entry();
  t.teardown(front.close);
  const back = await owner((socket) => socket.on('end', () => socket.end('late answer')));
  t.teardown(back.close);
  const client = net.connect({ port: front.port, host: '127.0.0.1', allowHalfOpen: true });
  await once(client, 'connect');
  const conn = await front.next();
  const ev = events();
  forwardSocket(conn, { host: '127.0.0.1', port: back.port }, Buffer.from('H'), Buffer.alloc(0), 1000, ev);
  client.end('request');
  const answer: Buffer[] = [];
  client.on('data', (chunk) => answer.push(chunk));
  await once(client, 'end');
  t.equal(Buffer.concat(answer).toString(), 'late answer');
  t.equal(back.received[0]?.toString(), 'Hrequest');
  await ev.ended;
});

t.test('backpressure: an owner that does not read stops the client side, and nothing is lost', async (t) => {
  const front = await entry();
  t.teardown(front.close);
  const back = await owner((socket) => socket.pause());
  t.teardown(back.close);
  const client = net.connect(front.port, '127.0.0.1');
  await once(client, 'connect');
  const conn = await front.next();
  const ev = events();
  forwardSocket(conn, { host: '127.0.0.1', port: back.port }, Buffer.alloc(0), Buffer.alloc(0), 1000, ev);
  await pollUntil(() => (ev.log.includes('connected') ? true : undefined));
  const chunk = Buffer.alloc(64 * 1024, 7);
  let written = 0;
  // Bounded: 64 MB at most; the client must be held back long before.
  while (written < 64 * 1024 * 1024 && client.write(chunk)) written += chunk.length;
  t.ok(written < 64 * 1024 * 1024, `the client was held back after ${written} bytes`);
  await new Promise((resolve) => setTimeout(resolve, 200));
  const buffered = (back.received[0]?.length ?? 0);
  t.equal(buffered, 0, 'the owner read nothing yet');
  // Now the owner reads: everything arrives.
  const expected = written + chunk.length;
  back.sockets[0]?.resume();
  await pollUntil(() => ((back.received[0]?.length ?? 0) >= expected ? true : undefined), 20_000);
  t.equal(back.received[0]?.length, expected);
  client.end();
  back.sockets[0]?.end();
  await ev.ended;
});

t.test('an owner that refuses: unreachable, the client untouched and still readable by the caller', async (t) => {
  const front = await entry();
  t.teardown(front.close);
  const closedPort = await new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
  const client = net.connect(front.port, '127.0.0.1');
  await once(client, 'connect');
  const conn = await front.next();
  const ev = events();
  forwardSocket(conn, { host: '127.0.0.1', port: closedPort }, Buffer.from('H'), Buffer.from('x'), 1000, ev);
  await pollUntil(() => (ev.log.length > 0 ? true : undefined));
  t.same(ev.log, ['unreachable refused']);
  client.write('after');
  const read = await new Promise<string>((resolve) => conn.once('data', (chunk) => resolve(chunk.toString())));
  t.equal(read, 'after', 'the caller reads the client where the forward left it');
  conn.destroy();
  client.destroy();
});

t.test('an owner that never answers the connect: unreachable after the timeout', async (t) => {
  const front = await entry();
  t.teardown(front.close);
  const silent = await blackhole(t);
  const client = net.connect(front.port, '127.0.0.1');
  await once(client, 'connect');
  const conn = await front.next();
  const ev = events();
  const started = Date.now();
  forwardSocket(conn, { host: '127.0.0.1', port: silent }, Buffer.from('H'), Buffer.alloc(0), 150, ev);
  await pollUntil(() => (ev.log.length > 0 ? true : undefined), 10_000);
  t.same(ev.log, ['unreachable timeout']);
  t.ok(Date.now() - started >= 140, 'not before the timeout');
  conn.destroy();
  client.destroy();
});

/** A port nothing listens on (bound, then closed). */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

t.test("the master's plan: a refused owner is reported and the next node gets the connection", async (t) => {
  const front = await entry();
  t.teardown(front.close);
  const back = await owner((socket) => socket.on('data', () => socket.end('from the next node')));
  t.teardown(back.close);
  const dead = await closedPort();
  const client = net.connect(front.port, '127.0.0.1');
  await once(client, 'connect');
  const socket = await front.next();
  const reports: string[] = [];
  let servedHere = false;
  const plan = {
    peers: [
      { id: `127.0.0.1:${dead}`, host: '127.0.0.1', port: dead },
      { id: `127.0.0.1:${back.port}`, host: '127.0.0.1', port: back.port },
    ],
    header: Buffer.from('HEADER|').toString('base64'),
    acceptedAt: Number(process.hrtime.bigint()),
    retrying: [`127.0.0.1:${back.port}`],
  };
  forwardToOwner(socket, Buffer.from('peeked|'), plan, { connectTimeoutMs: 1000, report: (peer, outcome) => void reports.push(`${peer} ${outcome}`), serveHere: () => (servedHere = true) });
  client.write('rest');
  const answer: Buffer[] = [];
  client.on('data', (chunk) => answer.push(chunk));
  await once(client, 'end');
  t.equal(Buffer.concat(answer).toString(), 'from the next node');
  t.equal(back.received[0]?.toString().startsWith('HEADER|peeked|'), true, 'the header and the peeked bytes first');
  t.same(reports, [`127.0.0.1:${dead} refused`, `127.0.0.1:${back.port} connected`], 'the failure, and the answer of a peer the master was retrying');
  t.equal(servedHere, false);
  client.destroy();
});

t.test('no node answers: served here, with nothing consumed', async (t) => {
  const front = await entry();
  t.teardown(front.close);
  const dead = await closedPort();
  const client = net.connect(front.port, '127.0.0.1');
  await once(client, 'connect');
  const socket = await front.next();
  client.write('the request');
  const reports: string[] = [];
  const served = new Promise<void>((resolve) =>
    forwardToOwner(socket, Buffer.alloc(0), { peers: [{ id: 'a', host: '127.0.0.1', port: dead }], header: '', acceptedAt: 0, retrying: [] }, { connectTimeoutMs: 1000, report: (peer, outcome) => void reports.push(`${peer} ${outcome}`), serveHere: resolve }),
  );
  await served;
  t.same(reports, ['a refused']);
  const read = await new Promise<string>((resolve) => socket.once('data', (chunk) => resolve(chunk.toString())));
  t.equal(read, 'the request', 'the app gets every byte the client sent');
  socket.destroy();
  client.destroy();
});
