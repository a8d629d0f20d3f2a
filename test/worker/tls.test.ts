import { copyFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import pino from 'pino';
import t from 'tap';
import { createTlsFront, type TlsFront } from '../../src/worker/tls.js';
import { pollUntil } from '../helpers/balancer.js';
import { createTestCa, opensslMissing, type TestCa } from '../helpers/certs.js';

function memoryLog(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return { log: pino({ level: 'debug' }, { write: (text: string) => lines.push(JSON.parse(text) as Record<string, unknown>) }), lines };
}

/** A loopback listener that feeds each raw socket into the front, as the worker runtime does with handed-off sockets. */
async function feed(t: { teardown(fn: () => unknown): void }, front: TlsFront): Promise<number> {
  const server = net.createServer((socket) => front.server.emit('connection', socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  return (server.address() as net.AddressInfo).port;
}

/** The app: answers with its protocol; every request counted. */
function app(): { server: http.Server; seen: string[] } {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(`${req.httpVersion} ${req.url}`);
    res.end(`hello over ${req.httpVersion}`);
  });
  return { server, seen };
}

function httpsGet(port: number, ca: Buffer, fingerprint?: (value: string) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/one', ca, agent: false, servername: 'localhost' }, (res) => {
      fingerprint?.((res.socket as tls.TLSSocket).getPeerX509Certificate()?.fingerprint256 ?? '');
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
  });
}

const missing = opensslMissing();
if (missing !== null) {
  t.skip(`TLS front: ${missing}`);
} else {
  const ca: TestCa = createTestCa();
  const first = ca.issue('first');
  const second = ca.issue('second');

  t.test("HTTP/1.1 over TLS: the decrypted socket reaches the app's own server", async (t) => {
    const { server, seen } = app();
    const front = createTlsFront(server, { cert: first.certPath, key: first.keyPath, http2: false }, { handshakeTimeoutMs: 5000, headersTimeoutMs: 5000 }, memoryLog().log);
    t.not(front.server, server, 'a TLS server in front of the app');
    const port = await feed(t, front);
    t.equal(await httpsGet(port, ca.caPem), 'hello over 1.1');
    t.same(seen, ['1.1 /one']);
  });

  t.test('http2: ALPN picks h2, requests go to the app, drain sends GOAWAY, a silent session is closed', async (t) => {
    const { server, seen } = app();
    const front = createTlsFront(server, { cert: first.certPath, key: first.keyPath, http2: true }, { handshakeTimeoutMs: 5000, headersTimeoutMs: 300 }, memoryLog().log);
    const port = await feed(t, front);
    const session = http2.connect(`https://localhost:${port}`, { ca: ca.caPem });
    t.teardown(() => session.destroy());
    const body = await new Promise<string>((resolve, reject) => {
      const stream = session.request({ ':path': '/two' });
      let text = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => (text += chunk));
      stream.on('end', () => resolve(text));
      stream.on('error', reject);
    });
    t.equal(body, 'hello over 2.0');
    t.same(seen, ['2.0 /two']);
    const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()));
    front.drain();
    await goaway;
    t.pass('an open session is asked to go away');

    // A client that opens a session and never sends a request is closed after headersTimeoutMs.
    const silent = http2.connect(`https://localhost:${port}`, { ca: ca.caPem });
    silent.on('error', () => {});
    const closed = new Promise<void>((resolve) => silent.once('close', () => resolve()));
    await closed;
    t.pass('the silent session was closed by the server');
  });

  t.test('reload: a new certificate for new handshakes; a broken one is refused and the old kept', async (t) => {
    const dir = ca.dir;
    const certPath = join(dir, 'live.pem');
    const keyPath = join(dir, 'live.key');
    copyFileSync(first.certPath, certPath);
    copyFileSync(first.keyPath, keyPath);
    const { log, lines } = memoryLog();
    const { server } = app();
    const front = createTlsFront(server, { cert: certPath, key: keyPath, http2: false }, { handshakeTimeoutMs: 5000, headersTimeoutMs: 5000 }, log);
    const port = await feed(t, front);
    let seen = '';
    await httpsGet(port, ca.caPem, (value) => (seen = value));
    t.equal(seen, first.fingerprint256);
    copyFileSync(second.certPath, certPath);
    copyFileSync(second.keyPath, keyPath);
    front.reload();
    t.match(lines.at(-1), { msg: 'tls certificate reloaded', from: first.fingerprint256, to: second.fingerprint256 });
    await httpsGet(port, ca.caPem, (value) => (seen = value));
    t.equal(seen, second.fingerprint256, 'new handshakes get the new certificate');
    // A key that does not match the certificate: refused, the current one stays.
    copyFileSync(first.keyPath, keyPath);
    front.reload();
    t.match(lines.at(-1), { msg: 'tls reload failed; keeping the current certificate', fingerprint: second.fingerprint256 });
    await httpsGet(port, ca.caPem, (value) => (seen = value));
    t.equal(seen, second.fingerprint256);
  });

  t.test('an app that is already a TLS server gets the certificate, not a second layer', async (t) => {
    const server = https.createServer((_req, res) => res.end('own https'));
    const front = createTlsFront(server, { cert: first.certPath, key: first.keyPath, http2: false }, { handshakeTimeoutMs: 5000, headersTimeoutMs: 5000 }, memoryLog().log);
    t.equal(front.server, server);
    const port = await feed(t, front);
    t.equal(await httpsGet(port, ca.caPem), 'own https');
  });

  t.test('a failed handshake is logged at debug and reaches no app', async (t) => {
    const { log, lines } = memoryLog();
    const { server, seen } = app();
    const front = createTlsFront(server, { cert: first.certPath, key: first.keyPath, http2: false }, { handshakeTimeoutMs: 5000, headersTimeoutMs: 5000 }, log);
    const port = await feed(t, front);
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.end('GET / HTTP/1.1\r\n\r\n');
    await pollUntil(() => (lines.some((line) => line.msg === 'tls handshake failed') ? true : undefined), 10_000);
    t.same(seen, []);
  });

  t.test('http2 asked for an app that is not HTTP: TLS without HTTP/2, said once', async (t) => {
    const { log, lines } = memoryLog();
    const plain = net.createServer();
    createTlsFront(plain, { cert: first.certPath, key: first.keyPath, http2: true }, { handshakeTimeoutMs: 5000, headersTimeoutMs: 5000 }, log);
    t.match(lines, [{ msg: 'tls.http2 needs an HTTP app; serving TLS without HTTP/2' }]);
  });

  t.test('certificate material that does not load: the front is not built', async (t) => {
    t.throws(() => createTlsFront(http.createServer(), { cert: join(ca.dir, 'absent.pem'), key: first.keyPath, http2: false }, { handshakeTimeoutMs: 5000, headersTimeoutMs: 5000 }, memoryLog().log));
  });
}
