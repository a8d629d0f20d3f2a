import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { CONNECTION_INFO, type ConnectionInfo } from '../../../src/shared/connection-info.js';
import { forwardHooks } from '../../../src/worker/reuse/forward.js';
import { FRAME_CREDIT, FRAME_DATA, FRAME_DONE, FRAME_END, FRAME_INFO, FRAME_KEY, FRAME_RESET, FrameReader, frameHeader, linkPath } from '../../../src/worker/link/frames.js';
import { LinkPool } from '../../../src/worker/link/front.js';
import { installRequestHooks } from '../../../src/worker/request-hooks.js';
import { setPoolView } from '../../../src/worker/reuse/destination.js';
import { parseResponse, readResponse } from '../../helpers/balancer.js';
import { clientKeys, preference } from '../../helpers/pool.js';

/*
 * The front half of key.reuse "forward" against a scripted back: a raw link
 * listener that answers frames as each test says, so that what the front
 * sends (and how it reacts to a refusal or a reset) is seen byte for byte.
 */

const BACK_PID = 515151;
const keys = clientKeys(200);
const HERE = keys.find((key) => preference(key, 2)[0] === 0) as string;
const THERE = keys.find((key) => preference(key, 2)[0] === 1) as string;

interface Frame {
  readonly type: number;
  readonly stream: number;
  readonly payload: Buffer;
}

/** A scripted back: every frame it gets goes to `script`, which answers with `send`. */
async function scriptedBack(t: { teardown(fn: () => unknown): void }, dir: string, script: (frame: Frame, send: (type: number, stream: number, payload?: Buffer) => void) => void): Promise<Frame[]> {
  const frames: Frame[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    const send = (type: number, stream: number, payload: Buffer = Buffer.alloc(0)): void => {
      socket.write(Buffer.concat([frameHeader(type, stream, payload.length), payload]));
    };
    const reader = new FrameReader((type, stream, payload) => {
      const frame = { type, stream, payload: Buffer.from(payload) };
      frames.push(frame);
      script(frame, send);
    });
    socket.on('data', (chunk: Buffer) => reader.push(chunk));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(linkPath(dir, BACK_PID), resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return frames;
}

/** A front: an http server with the forward hook, fed client connections that a trusted proxy opened; `draining` as the runtime's drain does it. */
async function front(t: { teardown(fn: () => unknown): void }, dir: string, drain: { draining: boolean } = { draining: false }): Promise<number> {
  setPoolView(2, [1, 1], [process.pid, BACK_PID]);
  const links = new LinkPool(dir);
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end(`here ${req.url}`));
  });
  const hooks = forwardHooks({
    slot: 0,
    rules: { order: ['forwarded', 'remote'], cookie: 'sid', forwardedTrustedHops: 1 },
    stickyCookie: undefined,
    maxHeadBytes: 16384,
    headTimeoutMs: 10_000,
    server: () => server,
    handBack: (_socket, _bytes, _info, _next, done) => done(new Error('no master here')),
    links,
  });
  installRequestHooks(server, [hooks.request]);
  server.prependListener('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
    if (drain.draining) res.setHeader('connection', 'close');
  });
  server.on('connection', (socket: net.Socket) => {
    const info: ConnectionInfo = { key: HERE, keySource: 'forwarded', worker: 0, proxy: null, peer: '127.0.0.1', peerTrusted: true };
    (socket as unknown as Record<symbol, unknown>)[CONNECTION_INFO] = info;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    links.linkTo(BACK_PID)?.destroy();
    server.closeAllConnections();
    server.close();
  });
  return (server.address() as net.AddressInfo).port;
}

function setup(t: { teardown(fn: () => unknown): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'forward-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A client connection whose first request (this worker's key) was answered here. */
async function client(t: { teardown(fn: () => unknown): void }, port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  t.teardown(() => socket.destroy());
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(`GET /first HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${HERE}\r\n\r\n`);
  const first = await readResponse(socket);
  if (!first.body.toString().startsWith('here')) throw new Error('the first request is served where the master sent it');
  return socket;
}

const OK = (body: string): Buffer => Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body}`);

t.test("a request of another worker's key is sent as Node parsed it (header lines in order and case, a chunked body chunked again with its trailers), and its response comes back as the back wrote it", async (t) => {
  const dir = setup(t);
  const frames = await scriptedBack(t, dir, (frame, send) => {
    // Answer once the request is complete (its last chunk).
    if (frame.type === FRAME_DATA && frame.payload.toString().endsWith('\r\n\r\n') && frame.payload.toString().startsWith('0\r\n')) {
      send(FRAME_DATA, frame.stream, OK('there'));
      send(FRAME_DONE, frame.stream);
    }
  });
  const port = await front(t, dir);
  const socket = await client(t, port);
  socket.write(`POST /up?q=1 HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: ${THERE}\r\nX-Odd:  spaced\tvalue \r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nX-Trailer: t1\r\n\r\n`);
  const response = await readResponse(socket);
  t.equal(response.body.toString(), 'there', "the back's answer");
  const info = frames.find((frame) => frame.type === FRAME_INFO);
  t.ok(info, 'INFO first');
  t.equal((JSON.parse((info as Frame).payload.toString()) as { info: ConnectionInfo }).info.key, THERE, "under the request's key");
  const sent = Buffer.concat(frames.filter((frame) => frame.type === FRAME_DATA).map((frame) => frame.payload)).toString('latin1');
  t.equal(
    sent,
    `POST /up?q=1 HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: ${THERE}\r\nX-Odd: spaced\tvalue\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\nX-Trailer: t1\r\n\r\n`,
    'the bytes the back got',
  );
  // The connection goes on: the next request of this worker's key is served here.
  socket.write(`GET /again HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${HERE}\r\n\r\n`);
  t.equal((await readResponse(socket)).body.toString(), 'here /again');
});

t.test("the same stream's next relayed request of another client carries only its key (a KEY frame)", async (t) => {
  const dir = setup(t);
  const frames = await scriptedBack(t, dir, (frame, send) => {
    if (frame.type !== FRAME_DATA) return;
    send(FRAME_DATA, frame.stream, OK('there'));
    send(FRAME_DONE, frame.stream);
  });
  const port = await front(t, dir);
  const socket = await client(t, port);
  const other = keys.filter((key) => preference(key, 2)[0] === 1)[1] as string;
  for (const key of [THERE, other]) {
    socket.write(`GET /k HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${key}\r\n\r\n`);
    t.equal((await readResponse(socket)).body.toString(), 'there');
  }
  t.same(frames.filter((frame) => frame.type === FRAME_INFO || frame.type === FRAME_KEY).map((frame) => [frame.type, frame.stream]), [[FRAME_INFO, 1], [FRAME_KEY, 1]], 'INFO once, then KEY, on one stream');
  const key = frames.find((frame) => frame.type === FRAME_KEY) as Frame;
  t.equal(key.payload.toString('latin1', 1), other, 'the new key');
  t.equal(key.payload[0], 2, 'source: forwarded');
});

t.test('Expect: 100-continue is answered once, here; the relayed head goes without it', async (t) => {
  const dir = setup(t);
  const frames = await scriptedBack(t, dir, (frame, send) => {
    if (frame.type === FRAME_DATA && frame.payload.toString() === 'body!') {
      send(FRAME_DATA, frame.stream, OK('got it'));
      send(FRAME_DONE, frame.stream);
    }
  });
  const port = await front(t, dir);
  const socket = await client(t, port);
  socket.write(`POST /c HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${THERE}\r\nexpect: 100-continue\r\ncontent-length: 5\r\n\r\n`);
  const interim = await readResponse(socket);
  t.equal(interim.status, 100, '100 Continue from the worker holding the connection');
  socket.write('body!');
  t.equal((await readResponse(socket)).body.toString(), 'got it');
  const head = (frames.find((frame) => frame.type === FRAME_DATA) as Frame).payload.toString();
  t.notMatch(head, /expect/i, 'no Expect in the relayed head');
});

t.test('a stream the back refused before taking the request: the request goes again on a new stream, unchanged', async (t) => {
  const dir = setup(t);
  const frames = await scriptedBack(t, dir, (frame, send) => {
    if (frame.type !== FRAME_DATA) return;
    // The first stream is refused (as a draining back refuses an idle one); the next one is answered.
    if (frame.stream === 1) send(FRAME_RESET, 1, Buffer.from([1]));
    else {
      send(FRAME_DATA, frame.stream, OK('second try'));
      send(FRAME_DONE, frame.stream);
    }
  });
  const port = await front(t, dir);
  const socket = await client(t, port);
  let closed = false;
  socket.once('close', () => (closed = true));
  socket.write(`GET /retry HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${THERE}\r\n\r\n`);
  t.equal((await readResponse(socket)).body.toString(), 'second try');
  const heads = frames.filter((frame) => frame.type === FRAME_DATA);
  t.same(heads.map((frame) => frame.stream), [1, 2], 'sent on stream 1, then on stream 2');
  t.ok((heads[0] as Frame).payload.equals((heads[1] as Frame).payload), 'the same bytes');
  t.ok(frames.some((frame) => frame.type === FRAME_INFO && frame.stream === 2), 'stream 2 opened with its INFO');
  t.equal(closed, false, 'the client connection stays open');
});

t.test('a refusal after the back took the request (a CREDIT came) is a reset: the client connection closes, nothing is sent twice', async (t) => {
  const dir = setup(t);
  const frames = await scriptedBack(t, dir, (frame, send) => {
    if (frame.type !== FRAME_DATA) return;
    const credit = Buffer.alloc(4);
    credit.writeUInt32LE(frame.payload.length, 0);
    send(FRAME_CREDIT, frame.stream, credit);
    send(FRAME_RESET, frame.stream, Buffer.from([1]));
  });
  const port = await front(t, dir);
  const socket = await client(t, port);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(`GET /once HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${THERE}\r\n\r\n`);
  await closed;
  t.equal(frames.filter((frame) => frame.type === FRAME_DATA).length, 1, 'sent once');
});

t.test('a reset mid-response closes the client connection after what came', async (t) => {
  const dir = setup(t);
  await scriptedBack(t, dir, (frame, send) => {
    if (frame.type !== FRAME_DATA) return;
    send(FRAME_DATA, frame.stream, Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial'));
    setTimeout(() => send(FRAME_RESET, frame.stream), 20);
  });
  const port = await front(t, dir);
  const socket = await client(t, port);
  let got = '';
  socket.on('data', (chunk: Buffer) => (got += chunk.toString()));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(`GET /cut HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${THERE}\r\n\r\n`);
  await closed;
  t.match(got, /partial$/, 'what the back sent reached the client, then the connection closed');
});

t.test('pipelined requests for the same worker go one at a time on their stream, answers in order', async (t) => {
  const dir = setup(t);
  const order: string[] = [];
  await scriptedBack(t, dir, (frame, send) => {
    if (frame.type !== FRAME_DATA) return;
    const url = /^GET (\S+)/.exec(frame.payload.toString())?.[1] as string;
    order.push(url);
    // The first answers late: the second must not be sent before it is done.
    setTimeout(() => {
      send(FRAME_DATA, frame.stream, OK(url));
      send(FRAME_DONE, frame.stream);
    }, url === '/p1' ? 50 : 0);
  });
  const port = await front(t, dir);
  const socket = await client(t, port);
  socket.write(`GET /p1 HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${THERE}\r\n\r\nGET /p2 HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${THERE}\r\n\r\nGET /p3 HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${HERE}\r\n\r\n`);
  // All three may arrive in one read: parse them off one buffer.
  let bytes = Buffer.alloc(0);
  const answers: string[] = [];
  await new Promise<void>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      bytes = Buffer.concat([bytes, chunk]);
      for (let response = parseResponse(bytes); response !== null; response = parseResponse(bytes)) {
        answers.push(response.body.toString());
        bytes = bytes.subarray(response.consumed);
      }
      if (answers.length === 3) resolve();
    });
  });
  t.same(answers, ['/p1', '/p2', 'here /p3'], 'in the order of the requests');
  t.same(order, ['/p1', '/p2'], 'the back got them one after the other');
});

t.test('a draining front closes after a relayed response, and the relayed head asks the back to say so (Connection: close reaches the client)', async (t) => {
  const dir = setup(t);
  const frames = await scriptedBack(t, dir, (frame, send) => {
    if (frame.type !== FRAME_DATA) return;
    const close = /\r\nConnection: close\r\n/.test(frame.payload.toString());
    send(FRAME_DATA, frame.stream, Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: ${close ? 'close' : 'keep-alive'}\r\n\r\nok`));
    send(FRAME_DONE, frame.stream);
    if (close) send(FRAME_END, frame.stream);
  });
  const drain = { draining: false };
  const port = await front(t, dir, drain);
  const socket = await client(t, port);
  // The worker starts draining (as on SIGHUP) with the connection open.
  drain.draining = true;
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(`GET /relayed HTTP/1.1\r\nhost: x\r\nconnection: keep-alive\r\nx-forwarded-for: ${THERE}\r\n\r\n`);
  let bytes = '';
  socket.on('data', (chunk: Buffer) => (bytes += chunk.toString()));
  await closed;
  const head = (frames.find((frame) => frame.type === FRAME_DATA) as Frame).payload.toString();
  t.match(head, /\r\nConnection: close\r\n\r\n$/, 'the relayed head says close');
  t.notMatch(head, /keep-alive/, "the client's own Connection line gave way");
  t.match(bytes, /connection: close\r\n\r\nok$/, 'the client read Connection: close before the connection closed');
});
