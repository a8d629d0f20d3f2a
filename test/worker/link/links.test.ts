import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { connectionInfo, type ConnectionInfo } from '../../../src/shared/connection-info.js';
import { FRAME_CREDIT, FRAME_DATA, FRAME_DONE, FRAME_END, FRAME_INFO, FRAME_RESET, FrameReader, HEADER_BYTES, MAX_FRAME_BYTES, STREAM_WINDOW, frameHeader, linkPath } from '../../../src/worker/link/frames.js';
import { LinkPool, setMaxStreamId, type FrontStream, type StreamUser } from '../../../src/worker/link/front.js';
import { listenForLinks } from '../../../src/worker/link/back.js';

t.test('FrameReader: frames cut anywhere come out whole, in order, with their stream ids', (t) => {
  const frames: Array<[number, number, Buffer]> = [
    [FRAME_INFO, 1, Buffer.from('{"a":1}')],
    [FRAME_DATA, 1, randomBytes(3000)],
    [FRAME_DATA, 0xffffffff, randomBytes(7)],
    [FRAME_DONE, 1, Buffer.alloc(0)],
    [FRAME_CREDIT, 2, Buffer.from([1, 2, 3, 4])],
    [FRAME_END, 3, Buffer.alloc(0)],
    [FRAME_RESET, 4, Buffer.alloc(0)],
  ];
  const bytes = Buffer.concat(frames.flatMap(([type, stream, payload]) => [frameHeader(type, stream, payload.length), payload]));
  for (const piece of [1, 2, 5, HEADER_BYTES - 1, HEADER_BYTES, HEADER_BYTES + 1, 1000, bytes.length]) {
    const got: Array<[number, number, Buffer]> = [];
    const reader = new FrameReader((type, stream, payload) => got.push([type, stream, Buffer.from(payload)]));
    let accepted = true;
    for (let at = 0; at < bytes.length; at += piece) accepted = reader.push(bytes.subarray(at, at + piece)) && accepted;
    t.equal(accepted, true, `pieces of ${piece}: every piece accepted`);
    t.equal(got.length, frames.length, `pieces of ${piece}: every frame`);
    t.ok(
      got.every(([type, stream, payload], i) => type === frames[i]?.[0] && stream === frames[i]?.[1] && payload.equals(frames[i]?.[2] as Buffer)),
      `pieces of ${piece}: types, streams and payloads intact`,
    );
  }
  t.end();
});

t.test('FrameReader: an unknown type or an oversized frame is refused', (t) => {
  const reader = new FrameReader(() => t.fail('no frame expected'));
  t.equal(reader.push(frameHeader(8, 1, 0)), false, 'unknown type');
  t.equal(new FrameReader(() => undefined).push(frameHeader(0, 1, 0)), false, 'type 0');
  t.equal(new FrameReader(() => undefined).push(frameHeader(FRAME_DATA, 1, MAX_FRAME_BYTES + 1)), false, 'too long');
  t.equal(new FrameReader(() => undefined).push(frameHeader(FRAME_DATA, 1, 10)), true, 'a header waiting for its payload is fine');
  t.end();
});

t.test('LinkPool: a worker whose link would not connect is not tried again for a while', (t) => {
  const pool = new LinkPool('/nonexistent');
  t.equal(pool.usable(42), true);
  pool.markDown(42);
  t.equal(pool.usable(42), false);
  t.equal(pool.usable(43), true, 'only that worker');
  t.end();
});

/** A StreamUser that records what it hears; `hold` keeps the credit of received bytes until `release`. */
class Recorder implements StreamUser {
  data: Buffer[] = [];
  done = 0;
  ended = false;
  reset = false;
  refused = false;
  unreachable = false;
  credits = 0;
  ready = false;
  hold = false;
  private held: Array<() => void> = [];
  private waiters: Array<() => void> = [];

  onStreamData(bytes: Buffer, passed: () => void): void {
    this.data.push(Buffer.from(bytes));
    if (this.hold) this.held.push(passed);
    else passed();
    this.wake();
  }
  onStreamDone(): void {
    this.done++;
    this.wake();
  }
  onStreamEnd(): void {
    this.ended = true;
    this.wake();
  }
  onStreamReset(): void {
    this.reset = true;
    this.wake();
  }
  onStreamRefused(): void {
    this.refused = true;
    this.wake();
  }
  onStreamUnreachable(): void {
    this.unreachable = true;
    this.wake();
  }
  onStreamCredit(): void {
    this.credits++;
    this.wake();
  }
  onStreamReady(): void {
    this.ready = true;
    this.wake();
  }

  release(): void {
    this.hold = false;
    for (const passed of this.held.splice(0)) passed();
  }

  get bytes(): Buffer {
    return Buffer.concat(this.data);
  }

  /** Resolves once `predicate` holds (checked after every event), bounded. */
  until(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
      const check = (): void => {
        if (predicate()) {
          clearTimeout(timer);
          resolve();
        } else this.waiters.push(check);
      };
      check();
    });
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}

const INFO: ConnectionInfo = { key: '198.51.100.7', keySource: 'forwarded', worker: 0, proxy: null, peer: '127.0.0.1', peerTrusted: true };
const BACK_PID = 424242;

/** A back (an http server behind listenForLinks) and a front pool in a fresh directory. */
async function setup(t: { teardown(fn: () => unknown): void }, handler: http.RequestListener): Promise<{ pool: LinkPool; server: http.Server; streams: () => number; stop: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'link-test-'));
  const server = http.createServer(handler);
  let open = 0;
  const listener = await listenForLinks(linkPath(dir, BACK_PID), { slot: 1, server: () => server, onStreamCount: (opened) => (open += opened ? 1 : -1) });
  const stop = (): void => {
    listener.close();
    rmSync(dir, { recursive: true, force: true });
  };
  const pool = new LinkPool(dir);
  t.teardown(() => {
    pool.linkTo(BACK_PID)?.destroy();
    stop();
  });
  return { pool, server, streams: () => open, stop };
}

/** Opens a stream for `user` and sends the client's INFO and `request`. */
async function relay(pool: LinkPool, user: Recorder, request: string | Buffer, info: ConnectionInfo = INFO): Promise<FrontStream> {
  const stream = pool.stream(BACK_PID);
  stream.user = user;
  if (!stream.connected) await user.until(() => user.ready, 'the link to connect');
  stream.sendInfo({ info, remoteAddress: '198.51.100.7', remotePort: 4242, remoteFamily: 'IPv4', localAddress: '10.0.0.1', localPort: 80 });
  stream.send(Buffer.from(request));
  return stream;
}

t.test('a relayed request reaches the back as its client, its response comes back whole, then DONE', async (t) => {
  const seen: Array<Record<string, unknown>> = [];
  const { pool } = await setup(t, (req, res) => {
    const info = connectionInfo(req.socket);
    seen.push({ key: info?.key, worker: info?.worker, remoteAddress: req.socket.remoteAddress, remotePort: req.socket.remotePort, localPort: req.socket.localPort });
    res.end(`hello ${req.url}`);
  });
  const user = new Recorder();
  await relay(pool, user, 'GET /one HTTP/1.1\r\nhost: x\r\n\r\n');
  await user.until(() => user.done === 1, 'DONE');
  t.match(user.bytes.toString(), /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nhello \/one$/, "the back's response, byte for byte");
  t.same(seen, [{ key: INFO.key, worker: 1, remoteAddress: '198.51.100.7', remotePort: 4242, localPort: 80 }], "the back's app sees the client, under its own slot");
  t.equal(user.ended || user.reset, false, 'the stream stays open');
});

t.test("a stream's next request of another key: the back's app sees the new key and source, the connection's addresses unchanged", async (t) => {
  const seen: Array<Record<string, unknown>> = [];
  const { pool } = await setup(t, (req, res) => {
    const info = connectionInfo(req.socket);
    seen.push({ key: info?.key, keySource: info?.keySource, peer: info?.peer, remoteAddress: req.socket.remoteAddress });
    res.end('ok');
  });
  const user = new Recorder();
  const stream = await relay(pool, user, 'GET /one HTTP/1.1\r\nhost: x\r\n\r\n');
  await user.until(() => user.done === 1, 'the first answer');
  stream.sendInfo({ info: { ...INFO, key: 'sid-\u00e9t\u00e9', keySource: 'cookie' }, remoteAddress: '198.51.100.7', remotePort: 4242, remoteFamily: 'IPv4', localAddress: '10.0.0.1', localPort: 80 });
  stream.send(Buffer.from('GET /two HTTP/1.1\r\nhost: x\r\n\r\n'));
  await user.until(() => user.done === 2, 'the second answer');
  t.same(seen, [
    { key: INFO.key, keySource: 'forwarded', peer: '127.0.0.1', remoteAddress: '198.51.100.7' },
    { key: 'sid-\u00e9t\u00e9', keySource: 'cookie', peer: '127.0.0.1', remoteAddress: '198.51.100.7' },
  ]);
});

t.test('two streams on one link: requests interleaved, each response to its own stream, one link', async (t) => {
  const { pool } = await setup(t, (req, res) => {
    // The first answers last: the streams must not wait for each other.
    setTimeout(() => res.end(`answer ${req.url}`), req.url === '/slow' ? 100 : 0);
  });
  const slow = new Recorder();
  const fast = new Recorder();
  await relay(pool, slow, 'GET /slow HTTP/1.1\r\nhost: x\r\n\r\n');
  await relay(pool, fast, 'GET /fast HTTP/1.1\r\nhost: x\r\n\r\n');
  await fast.until(() => fast.done === 1, 'the fast answer');
  t.equal(slow.done, 0, 'the slow one still pending');
  await slow.until(() => slow.done === 1, 'the slow answer');
  t.match(fast.bytes.toString(), /answer \/fast$/);
  t.match(slow.bytes.toString(), /answer \/slow$/);
  t.equal(pool.opened, 1, 'both on one link');
  t.equal(pool.linkTo(BACK_PID)?.streamCount, 2);
});

t.test('flow control: a client that does not pass bytes on holds at most a window of its response in flight', async (t) => {
  const body = randomBytes(3 * 1024 * 1024);
  let finished = false;
  const { pool } = await setup(t, (_req, res) => {
    res.setHeader('content-length', body.length);
    res.end(body, () => (finished = true));
  });
  const user = new Recorder();
  user.hold = true;
  await relay(pool, user, 'GET /big HTTP/1.1\r\nhost: x\r\n\r\n');
  await user.until(() => user.bytes.length >= STREAM_WINDOW, 'a window of bytes');
  // Give the back time to send more than it may.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const inFlight = user.bytes.length;
  t.ok(inFlight < STREAM_WINDOW + 128 * 1024, `${inFlight} bytes arrived without credit (window ${STREAM_WINDOW}, plus the chunk that crossed it)`);
  t.equal(finished, false, "the back's response waits");
  user.release();
  await user.until(() => user.done === 1, 'the rest after credit');
  const received = user.bytes;
  t.ok(received.subarray(received.length - body.length).equals(body), '3 MiB intact');
});

t.test('flow control: request bytes past the window wait for the back to read them', async (t) => {
  let request: http.IncomingMessage | null = null;
  const chunks: Buffer[] = [];
  const { pool } = await setup(t, (req, res) => {
    request = req;
    req.pause();
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => res.end(String(Buffer.concat(chunks).length)));
  });
  const size = 4 * STREAM_WINDOW;
  const user = new Recorder();
  const stream = await relay(pool, user, `POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: ${size}\r\n\r\n`);
  let flowing = true;
  let sent = 0;
  while (flowing && sent < size) {
    flowing = stream.send(randomBytes(16 * 1024));
    sent += 16 * 1024;
  }
  t.equal(flowing, false, 'send says wait once a window is in flight');
  t.ok(sent <= STREAM_WINDOW + 16 * 1024, `stopped after ${sent} bytes`);
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.equal(user.credits, 0, 'no credit while the app does not read');
  (request as unknown as http.IncomingMessage).resume();
  await user.until(() => user.credits === 1, 'credit once the app reads');
  while (sent < size) {
    if (!stream.send(randomBytes(16 * 1024))) await user.until(() => user.credits > 0, 'credit');
    user.credits = 0;
    sent += 16 * 1024;
  }
  await user.until(() => user.done === 1, 'the answer');
  t.match(user.bytes.toString(), new RegExp(`\\r\\n\\r\\n${size}$`), 'every byte reached the app');
});

t.test("a response that closes the connection ends the stream; the next request opens another", async (t) => {
  const { pool, streams } = await setup(t, (req, res) => {
    res.setHeader('connection', 'close');
    res.end(req.url);
  });
  const user = new Recorder();
  const stream = await relay(pool, user, 'GET /last HTTP/1.1\r\nhost: x\r\n\r\n');
  await user.until(() => user.ended, 'END');
  t.equal(user.done, 1, 'DONE before END');
  t.equal(stream.open, false, 'the stream carries no more requests');
  const next = new Recorder();
  const another = await relay(pool, next, 'GET /again HTTP/1.1\r\nhost: x\r\n\r\n');
  t.not(another.id, stream.id, 'a new stream');
  await next.until(() => next.ended, 'its END');
  await user.until(() => streams() === 0, 'the back to drop both streams');
  t.equal(pool.opened, 1, 'still one link');
});

t.test("a front's RESET drops the back's request; a back that destroys the stream resets it on the front", async (t) => {
  let aborted: Promise<void> | null = null;
  const { pool, streams } = await setup(t, (req) => {
    // Never answers: the client goes away.
    aborted = new Promise((resolve) => req.once('close', () => resolve()));
  });
  const user = new Recorder();
  const stream = await relay(pool, user, 'POST /never HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nabc');
  for (let i = 0; i < 200 && aborted === null; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  stream.reset();
  // Set in the back's request handler (a closure, so TypeScript narrows it to null here).
  await (aborted as Promise<void> | null);
  t.pass("the back's request closed");
  for (let i = 0; i < 200 && streams() !== 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  t.equal(streams(), 0, 'the back dropped the stream');

  // Bytes Node's server refuses: it answers 400 and destroys the connection (the stream).
  const bad = new Recorder();
  await relay(pool, bad, 'NOT HTTP AT ALL\r\n\r\n');
  await bad.until(() => bad.reset, 'RESET');
  t.match(bad.bytes.toString(), /^HTTP\/1\.1 400/, 'what the server wrote last came first');
});

t.test('a link to nowhere: its streams are unreachable and the worker is not tried again for a while', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'link-none-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pool = new LinkPool(dir);
  const user = new Recorder();
  const stream = pool.stream(BACK_PID);
  stream.user = user;
  await user.until(() => user.unreachable, 'unreachable');
  t.equal(user.reset, false, 'not a reset: nothing was sent');
  t.equal(pool.usable(BACK_PID), false, 'marked down');
});

t.test('the back going away: a stream with a request in flight hears it as a refusal (its user knows whether the request was taken)', async (t) => {
  const sockets = new Set<net.Socket>();
  const { pool, server, stop } = await setup(t, () => {
    // Never answers; the back dies instead.
  });
  server.on('connection', (segment: net.Socket) => sockets.add(segment));
  const user = new Recorder();
  await relay(pool, user, 'GET /hang HTTP/1.1\r\nhost: x\r\n\r\n');
  for (let i = 0; i < 200 && sockets.size === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  stop();
  // The listener is closed; the established link goes with the back's side of it.
  (pool.linkTo(BACK_PID) as { socket: net.Socket }).socket.destroy();
  await user.until(() => user.refused, 'refused');
  t.equal(user.reset, false, 'not a reset from the link: the user decides');
});

t.test('retain: a link to a worker that left the pool takes no new stream and closes after its last', async (t) => {
  const { pool } = await setup(t, (req, res) => setTimeout(() => res.end('late'), 100));
  const user = new Recorder();
  const stream = await relay(pool, user, 'GET /x HTTP/1.1\r\nhost: x\r\n\r\n');
  const link = pool.linkTo(BACK_PID) as unknown as { socket: net.Socket; usable: boolean };
  pool.retain([1, 2, 3]);
  t.equal(link.usable, false, 'retired');
  t.equal(pool.linkTo(BACK_PID), undefined, 'out of the pool');
  t.equal(link.socket.destroyed, false, 'still open for its stream');
  const closed = new Promise<void>((resolve) => link.socket.once('close', () => resolve()));
  await user.until(() => user.done === 1, 'the answer');
  stream.reset();
  await closed;
  t.pass('closed once its last stream ended');
});

t.test('a back that closes an idle stream refuses it: the front may send its request again; it never answers on it', async (t) => {
  const segments: net.Socket[] = [];
  const { pool, server } = await setup(t, (req, res) => res.end(req.url));
  server.on('connection', (segment: net.Socket) => segments.push(segment));
  const first = new Recorder();
  const stream = await relay(pool, first, 'GET /first HTTP/1.1\r\nhost: x\r\n\r\n');
  await first.until(() => first.done === 1, 'the first answer');
  // The next request is on its way when the back (draining) closes the stream as idle.
  const second = new Recorder();
  stream.user = second;
  (segments[0] as net.Socket).destroy();
  await second.until(() => second.refused, 'refused');
  t.equal(second.reset, false, 'refused, not reset: nothing after the last response was processed');
  t.equal(stream.open, false);
});

t.test('the back refuses frames for a stream it closed or never opened, and never reopens an old id', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'link-raw-'));
  const server = http.createServer((req, res) => res.end(req.url));
  const listener = await listenForLinks(linkPath(dir, BACK_PID), { slot: 0, server: () => server, onStreamCount: () => undefined });
  t.teardown(() => {
    listener.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const socket = net.connect(linkPath(dir, BACK_PID));
  t.teardown(() => socket.destroy());
  const frames: Array<[number, number, Buffer]> = [];
  const reader = new FrameReader((type, stream, payload) => frames.push([type, stream, Buffer.from(payload)]));
  socket.on('data', (chunk: Buffer) => reader.push(chunk));
  const write = (type: number, stream: number, payload: Buffer): void => {
    socket.write(frameHeader(type, stream, payload.length));
    socket.write(payload);
  };
  const info = Buffer.from(JSON.stringify({ info: INFO }));
  const get = Buffer.from('GET /x HTTP/1.1\r\nhost: x\r\n\r\n');
  const until = async (predicate: () => boolean, what: string): Promise<void> => {
    for (let i = 0; i < 500 && !predicate(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
    t.ok(predicate(), what);
  };
  write(FRAME_DATA, 5, get);
  await until(() => frames.some(([type, stream]) => type === FRAME_RESET && stream === 5), 'DATA for a stream never opened: RESET');
  t.same(frames.find(([type, stream]) => type === FRAME_RESET && stream === 5)?.[2], Buffer.from([1]), 'refused');
  write(FRAME_INFO, 7, info);
  write(FRAME_DATA, 7, get);
  await until(() => frames.some(([type, stream]) => type === FRAME_DONE && stream === 7), 'stream 7 opened by its INFO and answered');
  write(FRAME_RESET, 7, Buffer.alloc(0));
  write(FRAME_INFO, 6, info);
  write(FRAME_DATA, 6, get);
  await until(() => frames.some(([type, stream]) => type === FRAME_RESET && stream === 6), 'an id below the last opened: refused, not opened');
  t.notOk(frames.some(([type, stream]) => type === FRAME_DATA && stream === 6), 'and not answered');
});

t.test('a link whose stream ids run out is retired: the next stream goes on a new link', async (t) => {
  setMaxStreamId(2);
  t.teardown(() => setMaxStreamId(0xffffffff));
  const { pool } = await setup(t, (req, res) => res.end(req.url));
  const a = new Recorder();
  const first = await relay(pool, a, 'GET /a HTTP/1.1\r\nhost: x\r\n\r\n');
  const b = new Recorder();
  const second = await relay(pool, b, 'GET /b HTTP/1.1\r\nhost: x\r\n\r\n');
  t.equal(second.id, 2);
  await b.until(() => b.done === 1, 'b answered on the old link');
  const c = new Recorder();
  const third = await relay(pool, c, 'GET /c HTTP/1.1\r\nhost: x\r\n\r\n');
  await c.until(() => c.done === 1, 'c answered');
  t.equal(pool.opened, 2, 'a second link');
  t.equal(third.id, 1, 'whose ids start again');
  t.match(c.bytes.toString(), /\/c$/);
  // The old link closes once its last stream is gone.
  const oldLink = (first as unknown as { link: { socket: net.Socket } }).link.socket;
  const closed = new Promise<void>((resolve) => oldLink.once('close', () => resolve()));
  first.reset();
  second.reset();
  await closed;
  t.pass('the retired link closed after its last stream');
});

t.test('a draining back refuses new streams and keeps serving the ones it has', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'link-drain-'));
  const server = http.createServer((req, res) => res.end(req.url));
  let accepting = true;
  const listener = await listenForLinks(linkPath(dir, BACK_PID), { slot: 1, server: () => server, onStreamCount: () => undefined, accepting: () => accepting });
  const pool = new LinkPool(dir);
  t.teardown(() => {
    pool.linkTo(BACK_PID)?.destroy();
    listener.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const old = new Recorder();
  const stream = await relay(pool, old, 'GET /before HTTP/1.1\r\nhost: x\r\n\r\n');
  await old.until(() => old.done === 1, 'answered before the drain');
  accepting = false;
  const fresh = new Recorder();
  await relay(pool, fresh, 'GET /new HTTP/1.1\r\nhost: x\r\n\r\n');
  await fresh.until(() => fresh.refused, 'a new stream refused');
  t.equal(fresh.bytes.length, 0, 'nothing answered on it');
  stream.send(Buffer.from('GET /after HTTP/1.1\r\nhost: x\r\n\r\n'));
  await old.until(() => old.done === 2, 'the open stream still served');
  t.match(old.bytes.toString(), /\/after$/);
});
