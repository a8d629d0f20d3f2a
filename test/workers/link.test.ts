import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { connectionInfo, type ConnectionInfo } from '../../src/connection-info.js';
import {
  FRAME_DATA,
  FRAME_DONE,
  FRAME_END,
  FRAME_IDLE,
  FRAME_INFO,
  FrameReader,
  LinkPool,
  MAX_FRAME_BYTES,
  corkFor,
  frameHeader,
  linkPath,
  listenForLinks,
  type FrontLink,
  type LinkUser,
} from '../../workers/link.js';

t.test('FrameReader: frames cut anywhere come out whole and in order', (t) => {
  const frames: Array<[number, Buffer]> = [
    [FRAME_INFO, Buffer.from('{"a":1}')],
    [FRAME_DATA, randomBytes(3000)],
    [FRAME_DONE, Buffer.alloc(0)],
    [FRAME_DATA, randomBytes(1)],
    [FRAME_END, Buffer.alloc(0)],
    [FRAME_IDLE, Buffer.alloc(0)],
  ];
  const stream = Buffer.concat(frames.flatMap(([type, payload]) => [frameHeader(type, payload.length), payload]));
  for (const piece of [1, 2, 5, 6, 7, 1000, stream.length]) {
    const got: Array<[number, Buffer]> = [];
    const reader = new FrameReader((type, payload) => got.push([type, Buffer.from(payload)]));
    for (let at = 0; at < stream.length; at += piece) t.equal(reader.push(stream.subarray(at, at + piece)), true);
    t.equal(got.length, frames.length, `pieces of ${piece}: every frame`);
    t.ok(
      got.every(([type, payload], i) => type === frames[i]?.[0] && payload.equals(frames[i]?.[1] as Buffer)),
      `pieces of ${piece}: types and payloads intact`,
    );
  }
  t.end();
});

t.test('FrameReader: an unknown type or an oversized frame is refused', (t) => {
  const reader = new FrameReader(() => t.fail('no frame expected'));
  t.equal(reader.push(Buffer.from([9, 0, 0, 0, 0])), false, 'unknown type');
  t.equal(reader.push(Buffer.from([0, 0, 0, 0, 0])), false, 'type 0');
  t.equal(new FrameReader(() => undefined).push(frameHeader(FRAME_DATA, MAX_FRAME_BYTES + 1)), false, 'too long');
  t.equal(new FrameReader(() => undefined).push(frameHeader(FRAME_DATA, 10)), true, 'a header waiting for its payload is fine');
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

t.test('corkFor: writes of one tick leave together, then the socket is uncorked', async (t) => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  const peer = await accepted;
  corkFor(socket, false);
  corkFor(socket, false);
  socket.write('a');
  socket.write('b');
  t.equal(socket.writableCorked, 1, 'corked once however often asked');
  await new Promise((resolve) => process.nextTick(resolve));
  t.equal(socket.writableCorked, 0, 'uncorked after the tick');
  corkFor(socket, true);
  socket.write('c');
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(socket.writableCorked, 0, 'uncorked after the turn');
  let got = '';
  peer.setEncoding('utf8');
  await new Promise<void>((resolve) =>
    peer.on('data', (chunk: string) => {
      got += chunk;
      if (got.length === 3) resolve();
    }),
  );
  t.equal(got, 'abc');
  socket.destroy();
  peer.destroy();
});

/** Resolves once `predicate` holds, checking every 10 ms. */
async function pollUntil(predicate: () => boolean): Promise<void> {
  while (!predicate()) await new Promise((resolve) => setTimeout(resolve, 10));
}

/** A LinkUser that records what the back sends. */
class Recorder implements LinkUser {
  data: Buffer[] = [];
  done = 0;
  ended = false;
  gone = false;
  ready = 0;
  drained = 0;
  private waiters: Array<() => void> = [];
  onLinkData(bytes: Buffer): void {
    this.data.push(Buffer.from(bytes));
    this.wake();
  }
  onLinkDone(): void {
    this.done++;
    this.wake();
  }
  onLinkEnd(): void {
    this.ended = true;
    this.wake();
  }
  onLinkGone(): void {
    this.gone = true;
    this.wake();
  }
  onLinkReady(): void {
    this.ready++;
    this.wake();
  }
  onLinkDrain(): void {
    this.drained++;
  }
  text(): string {
    return Buffer.concat(this.data).toString('latin1');
  }
  async until(predicate: () => boolean): Promise<void> {
    while (!predicate()) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}

/** A new session on a link to `pid`, once the link is connected. */
async function connectedSession(pool: LinkPool, pid: number): Promise<{ user: Recorder; link: FrontLink }> {
  const user = new Recorder();
  const link = pool.acquire(pid, user);
  await user.until(() => user.ready === 1);
  return { user, link };
}

const INFO: ConnectionInfo = { key: '198.51.100.7', keySource: 'forwarded', worker: 0, proxy: null, peer: '127.0.0.1', peerTrusted: true };

t.test('a link end to end: the back feeds its app server, answers with DATA then DONE, and the link is reused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'link-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const seen: Array<{ url: string; key: string | undefined; worker: number | undefined; remote: string | undefined; local: string | undefined; body: string }> = [];
  const app = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const info = connectionInfo(req.socket);
      seen.push({ url: req.url ?? '', key: info?.key, worker: info?.worker, remote: req.socket.remoteAddress, local: (req.socket.address() as net.AddressInfo).address, body: Buffer.concat(chunks).toString() });
      const body = `${req.url} ${info?.key}`;
      res.writeHead(200, { 'content-length': Buffer.byteLength(body), ...(req.url === '/last' ? { connection: 'close' } : {}) });
      res.end(body);
    });
  });
  let open = 0;
  let everOpened = 0;
  const fakePid = 4_000_000 + process.pid;
  const links = await listenForLinks(linkPath(dir, fakePid), {
    slot: 3,
    server: () => app,
    onLinkCount: (isOpen) => {
      open += isOpen ? 1 : -1;
      if (isOpen) everOpened++;
    },
  });
  t.teardown(() => links.close());
  const pool = new LinkPool(dir);

  // A session: INFO, then a request in two DATA frames.
  const first = new Recorder();
  const link: FrontLink = pool.acquire(fakePid, first);
  t.equal(link.connected, false, 'a new link connects first');
  await first.until(() => first.ready === 1);
  link.sendInfo({ info: INFO, remoteAddress: '203.0.113.9', remotePort: 5555, remoteFamily: 'IPv4', localAddress: '10.0.0.1', localPort: 80 });
  link.sendInfo({ info: INFO, remoteAddress: 'ignored: same info object' });
  t.equal(link.send(Buffer.from('POST /one HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhe')), true);
  link.send(Buffer.from('llo'));
  await first.until(() => first.done === 1);
  t.match(first.text(), /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\n\/one 198\.51\.100\.7$/, 'the response, whole, before DONE');
  t.same(seen[0], { url: '/one', key: '198.51.100.7', worker: 3, remote: '203.0.113.9', local: '10.0.0.1', body: 'hello' }, "the app saw the session's client and key, and its own slot");
  link.release();
  t.equal(pool.idleCount(fakePid), 1, 'back in the pool');

  // The next session reuses the link, with another client.
  const second = new Recorder();
  const again = pool.acquire(fakePid, second);
  t.equal(again, link, 'the idle link is reused');
  t.equal(pool.idleCount(fakePid), 0);
  again.sendInfo({ info: { ...INFO, key: '198.51.100.8' }, remoteAddress: '203.0.113.10' });
  again.send(Buffer.from('GET /two HTTP/1.1\r\nhost: x\r\n\r\n'));
  await second.until(() => second.done === 1);
  t.match(second.text(), /\/two 198\.51\.100\.8$/, "the second session's key");
  t.equal(seen[1]?.remote, '203.0.113.10');
  t.equal(first.data.length > 0 && second.data.length > 0, true);

  // A response that closes: DATA, DONE, then END; the link cannot be reused.
  again.send(Buffer.from('GET /last HTTP/1.1\r\nhost: x\r\n\r\n'));
  await second.until(() => second.ended);
  t.equal(second.done, 2, 'DONE came before END');
  t.equal(again.reusable, false);
  again.release();
  t.equal(pool.idleCount(fakePid), 0, 'an ended link is closed, not pooled');
  await pollUntil(() => open === 0);
  t.equal(everOpened, 1, 'one link carried both sessions');
  t.equal(pool.opened, 1);
});

t.test('a link: the client half-closes (END to the back), a bad frame resets, a dead back is gone', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'link-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // Answers at once: Node's server (httpAllowHalfOpen false) ends its side as soon as it reads the client's FIN.
  const app = http.createServer((req, res) => {
    req.resume();
    res.end('ok');
  });
  const fakePid = 4_100_000 + process.pid;
  const links = await listenForLinks(linkPath(dir, fakePid), { slot: 1, server: () => app, onLinkCount: () => undefined });
  const pool = new LinkPool(dir);

  const { user, link } = await connectedSession(pool, fakePid);
  link.sendInfo({ info: INFO });
  link.send(Buffer.from('GET / HTTP/1.1\r\nhost: x\r\n\r\n'));
  link.sendEnd();
  await user.until(() => user.ended);
  t.match(user.text(), /^HTTP\/1\.1 200 OK\r\n[\s\S]*ok$/, 'answered, then the server ended its side after the client did');
  t.equal(link.reusable, false);
  link.release();

  // DATA before any INFO is not a session: the back resets the link.
  const { user: raw, link: bad } = await connectedSession(pool, fakePid);
  bad.send(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
  await raw.until(() => raw.gone);
  t.pass('reset without INFO');

  // An unknown frame type from the front: reset too.
  const { user: junk, link: junkLink } = await connectedSession(pool, fakePid);
  junkLink.socket.write(Buffer.from([77, 0, 0, 0, 0]));
  await junk.until(() => junk.gone);
  t.pass('reset on a bad frame');

  // A back that is not there: the link never connects; its user hears it is gone.
  await new Promise<void>((resolve) => links.close(() => resolve()));
  const orphan = new Recorder();
  const dead = pool.acquire(fakePid, orphan);
  await orphan.until(() => orphan.gone);
  t.equal(dead.connected, false, 'never connected');
  t.equal(orphan.ready, 0);
});

t.test('a link: a big response is relayed whole through backpressure; a destroyed session closes the link', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'link-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const big = randomBytes(3 * 1024 * 1024);
  const app = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-length': big.length });
      // Many writes, so that the link goes over its high-water mark.
      for (let at = 0; at < big.length; at += 100_000) res.write(big.subarray(at, at + 100_000));
      res.end();
    });
  });
  const fakePid = 4_200_000 + process.pid;
  let open = 0;
  const links = await listenForLinks(linkPath(dir, fakePid), { slot: 1, server: () => app, onLinkCount: (isOpen) => (open += isOpen ? 1 : -1) });
  t.teardown(() => links.close());
  const pool = new LinkPool(dir);
  const { user, link } = await connectedSession(pool, fakePid);
  link.sendInfo({ info: INFO });
  link.send(Buffer.from('GET /big HTTP/1.1\r\nhost: x\r\n\r\n'));
  // Read slowly for a while: the back must wait, not buffer without bound, and lose nothing.
  link.pause();
  await new Promise((resolve) => setTimeout(resolve, 50));
  link.resume();
  await user.until(() => user.done === 1);
  const all = Buffer.concat(user.data);
  const bodyAt = all.indexOf('\r\n\r\n') + 4;
  t.ok(all.subarray(bodyAt).equals(big), '3 MiB relayed byte for byte');
  link.destroy();
  await pollUntil(() => open === 0);
  t.pass('the back closed its end');
});
