import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, renameSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import { join } from 'node:path';
import tls from 'node:tls';
import t from 'tap';
import WebSocket from 'ws';
import { encodeProxyV1 } from '../../src/shared/protocol/proxy-v1.js';
import { MASTER, ROOT, connect, pollUntil, startBalancer, writeConfig, writeSplit, type DemoAnswer, type RunningBalancer } from '../helpers/balancer.js';
import { createTestCa, opensslMissing, type ServerCert, type TestCa } from '../helpers/certs.js';

t.setTimeout(240_000);

const CURL = '/usr/bin/curl';
const noOpenssl = opensslMissing();
const noCurl = spawnSync(CURL, ['--version']).status === 0 ? null : `${CURL} is not installed (.ci/run installs curl)`;

/** The TLS test certificates live in their own directory per test; the config points at copies we can rotate. */
function tlsFiles(ca: TestCa, cert: ServerCert, name: string): { cert: string; key: string; ca: string } {
  const certPath = join(ca.dir, `${name}-live.pem`);
  const keyPath = join(ca.dir, `${name}-live.key`);
  copyFileSync(cert.certPath, certPath);
  copyFileSync(cert.keyPath, keyPath);
  return { cert: certPath, key: keyPath, ca: ca.caPath };
}

/** Replaces a file the way a certificate manager does: write aside, then rename over it. */
function replaceFile(source: string, target: string): void {
  copyFileSync(source, `${target}.tmp`);
  renameSync(`${target}.tmp`, target);
}

/** A PROXY v1 header as an NLB would send it for a client. */
function proxyHeader(clientIp: string, clientPort: number, port: number): Buffer {
  return encodeProxyV1({ family: 'TCP4', source: { address: clientIp, port: clientPort }, destination: { address: '127.0.0.1', port } });
}

/**
 * A TLS connection through the balancer: raw TCP, optionally a PROXY header
 * first, then the TLS handshake over that same socket.
 */
async function tlsConnect(port: number, ca: Buffer, options: { proxyFrom?: string; alpn?: string[] } = {}): Promise<tls.TLSSocket> {
  const raw = await connect(port);
  if (options.proxyFrom !== undefined) raw.write(proxyHeader(options.proxyFrom, 40000 + Math.floor(Math.random() * 20000), port));
  const socket = tls.connect({ socket: raw, ca, servername: 'localhost', ...(options.alpn ? { ALPNProtocols: options.alpn } : {}) });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

/** GET / over a fresh TLS connection (HTTP/1.1, connection: close); the demo app's answer and the certificate seen. */
async function tlsGet(port: number, ca: Buffer, proxyFrom?: string): Promise<{ answer: DemoAnswer; fingerprint256: string }> {
  const socket = await tlsConnect(port, ca, proxyFrom === undefined ? {} : { proxyFrom });
  const fingerprint256 = socket.getPeerX509Certificate()?.fingerprint256 ?? '';
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  const closed = new Promise<void>((resolve, reject) => {
    socket.once('end', resolve);
    socket.once('error', reject);
  });
  socket.end('GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n');
  await closed;
  const text = Buffer.concat(chunks).toString();
  const split = text.indexOf('\r\n\r\n');
  if (!/^HTTP\/1\.1 200 /.test(text)) throw new Error(`unexpected answer: ${text.slice(0, 200)}`);
  return { answer: JSON.parse(text.slice(split + 4)) as DemoAnswer, fingerprint256 };
}

/** The certificate a fresh handshake presents. */
async function presentedFingerprint(port: number, ca: Buffer): Promise<string> {
  const socket = await tlsConnect(port, ca);
  const fingerprint = socket.getPeerX509Certificate()?.fingerprint256 ?? '';
  socket.destroy();
  return fingerprint;
}

/** Runs curl; resolves with its stdout (curl's own failures reject with its stderr). */
function curl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(CURL, ['--silent', '--show-error', '--max-time', '30', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`curl ${args.join(' ')} exited ${code}: ${err}`))));
  });
}

/** curl's answer split into the demo app's JSON and `%{http_version}` (written after a newline). */
async function curlDemo(port: number, caPath: string, extra: string[]): Promise<{ answer: DemoAnswer; httpVersion: string }> {
  const out = await curl(['--cacert', caPath, '--resolve', `localhost:${port}:127.0.0.1`, '-w', '\n%{http_version}', ...extra, `https://localhost:${port}/`]);
  const newline = out.lastIndexOf('\n');
  return { answer: JSON.parse(out.slice(0, newline)) as DemoAnswer, httpVersion: out.slice(newline + 1) };
}

function countLogs(balancer: RunningBalancer, msg: string): number {
  return balancer.logs.filter((line) => line.msg === msg).length;
}

t.test('TLS', { skip: noOpenssl ?? false }, async (t) => {
  const ca = createTestCa();
  const first = ca.issue('first');
  const second = ca.issue('second');

  t.test('curl --haproxy-protocol over TLS is answered by the demo app keyed on the PROXY source', { skip: noCurl ?? false }, async (t) => {
    // A long peek timeout: a handshake that completes proves the master did not wait for an HTTP head it can never see.
    const balancer = await startBalancer({ tls: tlsFiles(ca, first, 'curl'), limits: { peekTimeoutMs: 60_000 } });
    t.teardown(() => balancer.stop());

    // Several times: curl's ClientHello (517 bytes, random) often holds no 0x0A byte, which once made the master wait.
    for (let i = 0; i < 5; i++) {
      const proxied = await curlDemo(balancer.port, ca.caPath, ['--haproxy-protocol']);
      t.equal(proxied.answer.keySource, 'proxy', 'keyed on the PROXY header in front of the ClientHello');
      t.equal(proxied.answer.key, '127.0.0.1', 'curl sends its own address as the PROXY source');
      t.equal(proxied.httpVersion, '1.1', 'HTTP/1.1 when http2 is off');
    }

    // The cookie would win in plaintext (default order); through TLS the master cannot see it.
    const plain = await curlDemo(balancer.port, ca.caPath, ['--cookie', 'sid=abc']);
    t.equal(plain.answer.keySource, 'remote', 'no PROXY header: keyed on the TCP peer, the cookie is invisible');
    t.equal(plain.answer.clientIp, '127.0.0.1');
  });

  t.test('a TLS record after a PROXY header is handed to a worker at once, whatever its bytes', async (t) => {
    // peekTimeoutMs far beyond the log wait: only an immediate hand-off can produce the worker's line.
    const balancer = await startBalancer({ tls: tlsFiles(ca, first, 'record'), limits: { peekTimeoutMs: 120_000 }, log: { level: 'debug' } });
    t.teardown(() => balancer.stop());
    const raw = await connect(balancer.port);
    raw.on('error', () => {});
    await writeSplit(raw, proxyHeader('198.51.100.30', 50001, balancer.port), []);
    // A handshake record larger than the master's eager-parse window, with no 0x0A in it, in its own segment.
    const record = Buffer.alloc(600, 0x41);
    record.set([0x16, 0x03, 0x01, 0x02, 0x53, 0x01, 0x00, 0x02, 0x4f, 0x03, 0x03]);
    await writeSplit(raw, record, []);
    const line = await balancer.waitForLog((entry) => entry.msg === 'tls handshake failed', 60_000);
    t.equal(line.client, '198.51.100.30', 'the worker got it (and logs the PROXY source, not the TCP peer)');
    t.notOk(balancer.logs.some((entry) => entry.msg === 'connection refused'), 'the master refused nothing');
    raw.destroy();
  });

  t.test('PROXY v1 then a TLS handshake: the app sees the client, and it sticks to one worker', async (t) => {
    const balancer = await startBalancer({ tls: tlsFiles(ca, first, 'sticky'), workers: { count: 3, app: join(ROOT, 'dist', 'workers', 'demo-app.js') } });
    t.teardown(() => balancer.stop());

    const pids = new Set<number>();
    const workers = new Set<number>();
    for (let i = 0; i < 10; i++) {
      const { answer, fingerprint256 } = await tlsGet(balancer.port, ca.caPem, '198.51.100.22');
      t.equal(answer.clientIp, '198.51.100.22', 'req.socket.remoteAddress over TLS is the PROXY source');
      t.equal(answer.key, '198.51.100.22', 'connectionInfo(req.socket) works through the TLS socket');
      t.equal(answer.keySource, 'proxy');
      t.equal(fingerprint256, first.fingerprint256, 'the configured certificate');
      pids.add(answer.pid);
      workers.add(answer.worker);
    }
    t.equal(pids.size, 1, 'ten connections, one worker process');
    t.equal(workers.size, 1, 'one worker slot');

    // Other clients spread: the key really is the PROXY source.
    const spread = new Set<number>();
    for (let client = 1; client <= 24; client++) spread.add((await tlsGet(balancer.port, ca.caPem, `203.0.113.${client}`)).answer.pid);
    t.ok(spread.size > 1, `24 PROXY sources use more than one worker (${spread.size})`);
  });

  t.test('http2: curl --http2 gets HTTP/2, HTTP/1.1 still works, wss echoes', async (t) => {
    const balancer = await startBalancer({ tls: { ...tlsFiles(ca, first, 'h2'), http2: true } });
    t.teardown(() => balancer.stop());

    if (noCurl) t.skip(noCurl);
    else {
      const h2 = await curlDemo(balancer.port, ca.caPath, ['--http2', '--haproxy-protocol']);
      t.equal(h2.httpVersion, '2', 'curl negotiated HTTP/2 (ALPN h2)');
      t.equal(h2.answer.keySource, 'proxy');
      const h1 = await curlDemo(balancer.port, ca.caPath, ['--http1.1']);
      t.equal(h1.httpVersion, '1.1', 'HTTP/1.1 fallback (ALPN http/1.1)');
      t.equal(h1.answer.keySource, 'remote');
    }

    // node's http2 client behind a PROXY header: the compat req.socket carries the client address and connectionInfo.
    const raw = await tlsConnect(balancer.port, ca.caPem, { proxyFrom: '198.51.100.23', alpn: ['h2'] });
    t.equal(raw.alpnProtocol, 'h2');
    const session = http2.connect(`https://localhost:${balancer.port}`, { createConnection: () => raw });
    t.teardown(() => session.destroy());
    const body = await new Promise<string>((resolve, reject) => {
      const stream = session.request({ ':path': '/' });
      let text = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => (text += chunk));
      stream.on('end', () => resolve(text));
      stream.on('error', reject);
    });
    const answer = JSON.parse(body) as DemoAnswer;
    t.equal(answer.clientIp, '198.51.100.23', 'HTTP/2: req.socket.remoteAddress is the PROXY source');
    t.equal(answer.key, '198.51.100.23', 'HTTP/2: connectionInfo(req.socket) through the compat socket');
    t.equal(answer.keySource, 'proxy');

    // A rolling restart drains the worker holding this session: it must say GOAWAY (not just vanish).
    const goaway = new Promise<number | string>((resolve) => {
      session.once('goaway', (code: number) => resolve(code));
      session.once('close', () => resolve('closed without GOAWAY'));
    });
    balancer.proc.kill('SIGHUP');
    t.equal(await goaway, http2.constants.NGHTTP2_NO_ERROR, 'the draining worker sends GOAWAY (NO_ERROR) to its HTTP/2 session');
    await balancer.waitForLog((line) => line.msg === 'rolling restart done', 120_000);
    session.close();

    const ws = new WebSocket(`wss://localhost:${balancer.port}/ws`, { ca: ca.caPem });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const payload = randomBytes(64 * 1024);
    const echoed = new Promise<Buffer>((resolve) => ws.once('message', (data) => resolve(data as Buffer)));
    ws.send(payload);
    t.ok((await echoed).equals(payload), 'wss (on an http2-enabled server): binary message echoed byte for byte');
    ws.close();
  });

  t.test('wss echo behind a PROXY header', async (t) => {
    const balancer = await startBalancer({ tls: tlsFiles(ca, first, 'wss') });
    t.teardown(() => balancer.stop());
    const raw = await connect(balancer.port);
    raw.write(proxyHeader('198.51.100.24', 50000, balancer.port));
    const ws = new WebSocket(`wss://localhost:${balancer.port}/ws`, { ca: ca.caPem, createConnection: (options) => tls.connect({ ...(options as tls.ConnectionOptions), socket: raw }) });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const text = new Promise<string>((resolve) => ws.once('message', (data) => resolve(String(data))));
    ws.send('héllo over wss');
    t.equal(await text, 'héllo over wss');
    ws.close();
  });

  t.test('the http server keeps its headersTimeout over TLS', async (t) => {
    const balancer = await startBalancer({ tls: tlsFiles(ca, first, 'slow'), limits: { headersTimeoutMs: 1500, requestTimeoutMs: 3000 } });
    t.teardown(() => balancer.stop());
    const socket = await tlsConnect(balancer.port, ca.caPem, { proxyFrom: '198.51.100.25' });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => {});
    // A head that never ends: the worker's checker must answer 408 and close.
    socket.write('GET / HTTP/1.1\r\nhost: localhost\r\nx-slow: ');
    await closed;
    t.match(Buffer.concat(chunks).toString(), /^HTTP\/1\.1 408 /, '408 Request Timeout, then closed');
  });

  t.test('an HTTP/2 session that sends no request headers is closed after limits.headersTimeoutMs', async (t) => {
    const balancer = await startBalancer({ tls: { ...tlsFiles(ca, first, 'h2-slow'), http2: true }, limits: { headersTimeoutMs: 1500, requestTimeoutMs: 3000 } });
    t.teardown(() => balancer.stop());
    const socket = await tlsConnect(balancer.port, ca.caPem, { proxyFrom: '198.51.100.26', alpn: ['h2'] });
    t.equal(socket.alpnProtocol, 'h2');
    let received = 0;
    socket.on('data', (chunk: Buffer) => (received += chunk.length));
    socket.on('error', () => {});
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    // The client preface and an empty SETTINGS frame, then nothing: no HEADERS ever.
    socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]));
    await closed;
    t.ok(received > 0, 'the server spoke HTTP/2 (its SETTINGS) before closing');
    // A session that does send a request is not cut by the same timer.
    const raw = await connect(balancer.port);
    const session = http2.connect(`https://localhost:${balancer.port}`, { createConnection: () => tls.connect({ socket: raw, ca: ca.caPem, servername: 'localhost', ALPNProtocols: ['h2'] }) });
    t.teardown(() => session.destroy());
    const status = await new Promise<number>((resolve, reject) => {
      const stream = session.request({ ':path': '/' });
      stream.on('response', (headers) => resolve(Number(headers[':status'])));
      stream.on('error', reject);
      stream.resume();
      stream.end();
    });
    t.equal(status, 200);
  });

  t.test('SIGHUP: new handshakes present the new certificate, a request loop sees zero failures', async (t) => {
    const files = tlsFiles(ca, first, 'rotate');
    const balancer = await startBalancer({ tls: files });
    t.teardown(() => balancer.stop());
    t.equal(await presentedFingerprint(balancer.port, ca.caPem), first.fingerprint256, 'the first certificate before the reload');

    let stop = false;
    let ok = 0;
    const failures: string[] = [];
    const loop = (async () => {
      // Bounded: at most 3000 requests or 120 s, whichever first.
      const deadline = Date.now() + 120_000;
      for (let i = 0; !stop && i < 3000 && Date.now() < deadline; i++) {
        try {
          await tlsGet(balancer.port, ca.caPem, `198.51.100.${(i % 50) + 1}`);
          ok++;
        } catch (error) {
          failures.push((error as Error).message);
        }
      }
    })();
    await pollUntil(() => (ok >= 5 ? true : undefined), 60_000);

    replaceFile(second.certPath, files.cert);
    replaceFile(second.keyPath, files.key);
    balancer.proc.kill('SIGHUP');
    await pollUntil(async () => ((await presentedFingerprint(balancer.port, ca.caPem)) === second.fingerprint256 ? true : undefined), 60_000, 50);
    t.pass('new handshakes present the new certificate');
    await balancer.waitForLog((line) => line.msg === 'tls certificate reloaded' && line.to === second.fingerprint256, 60_000);
    t.pass('a running worker swapped its secure context in place');
    await balancer.waitForLog((line) => line.msg === 'rolling restart done', 120_000);
    const okBefore = ok;
    await pollUntil(() => (ok >= okBefore + 20 ? true : undefined), 60_000);
    stop = true;
    await loop;
    t.same(failures, [], `zero failures across the reload (${ok} requests)`);
    t.ok(ok > 25, 'the loop kept running');
    for (let i = 0; i < 5; i++) t.equal(await presentedFingerprint(balancer.port, ca.caPem), second.fingerprint256, 'every worker presents the new certificate');

    // A broken rotation (half-written certificate): workers keep the current context.
    writeFileSync(files.cert, '-----BEGIN CERTIFICATE-----\nnot really\n');
    const restarts = countLogs(balancer, 'rolling restart done');
    balancer.proc.kill('SIGHUP');
    const failed = await balancer.waitForLog((line) => line.msg === 'tls reload failed; keeping the current certificate', 60_000);
    t.match(String(failed.err), /^tls\.cert: /, 'the error names tls.cert');
    t.equal(failed.level, 'error', 'logged as an error');
    await pollUntil(() => (countLogs(balancer, 'rolling restart done') > restarts ? true : undefined), 120_000);
    for (let i = 0; i < 5; i++) {
      const { answer, fingerprint256 } = await tlsGet(balancer.port, ca.caPem, `198.51.100.${i + 100}`);
      t.equal(fingerprint256, second.fingerprint256, 'still the last good certificate');
      t.equal(answer.keySource, 'proxy');
    }
  });

  t.test('bad TLS config: exit 2 with one line naming the tls path', async (t) => {
    const other = ca.issue('other');
    const encrypted = ca.issue('encrypted', { passphrase: 'correct horse' });
    const garbage = join(ca.dir, 'garbage.pem');
    writeFileSync(garbage, 'not a certificate\n');
    const cases: Array<{ name: string; tls: Record<string, unknown>; line: RegExp }> = [
      { name: 'missing cert file', tls: { cert: join(ca.dir, 'nope.pem'), key: first.keyPath }, line: /^sticky-session-ts: \S*config\.json: tls\.cert: cannot read .*nope\.pem \(ENOENT\)$/ },
      { name: 'missing key file', tls: { cert: first.certPath, key: join(ca.dir, 'nope.key') }, line: /^sticky-session-ts: \S*config\.json: tls\.key: cannot read .*\(ENOENT\)$/ },
      { name: 'missing ca file', tls: { cert: first.certPath, key: first.keyPath, ca: join(ca.dir, 'nope-ca.pem') }, line: /^sticky-session-ts: \S*config\.json: tls\.ca: cannot read / },
      { name: 'cert is not PEM', tls: { cert: garbage, key: first.keyPath }, line: /^sticky-session-ts: \S*config\.json: tls\.cert: .* is not a PEM certificate/ },
      { name: 'ca is not PEM', tls: { cert: first.certPath, key: first.keyPath, ca: garbage }, line: /^sticky-session-ts: \S*config\.json: tls\.ca: .* is not a PEM certificate/ },
      { name: 'key is not a key', tls: { cert: first.certPath, key: garbage }, line: /^sticky-session-ts: \S*config\.json: tls\.key: .* is not a usable private key/ },
      { name: 'key of another certificate', tls: { cert: first.certPath, key: other.keyPath }, line: /^sticky-session-ts: \S*config\.json: tls\.key: .* does not load with tls\.cert/ },
      { name: 'encrypted key, no passphrase', tls: { cert: encrypted.certPath, key: encrypted.keyPath }, line: /^sticky-session-ts: \S*config\.json: tls\.key: .*tls\.passphrase/ },
      { name: 'encrypted key, wrong passphrase', tls: { cert: encrypted.certPath, key: encrypted.keyPath, passphrase: 'wrong' }, line: /^sticky-session-ts: \S*config\.json: tls\.key: .*wrong tls\.passphrase/ },
      { name: 'cert path not a string', tls: { cert: 42, key: first.keyPath }, line: /^sticky-session-ts: \S*config\.json: tls\.cert: / },
    ];
    for (const c of cases) {
      const result = spawnSync(process.execPath, [MASTER, '--config', writeConfig({ tls: c.tls })], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
      t.equal(result.status, 2, `${c.name}: exit code 2`);
      const lines = result.stderr.trim().split('\n');
      t.equal(lines.length, 1, `${c.name}: one line`);
      t.match(lines[0], c.line, `${c.name}: names the problem`);
    }

    // The same encrypted key with its passphrase serves.
    const balancer = await startBalancer({ tls: { cert: encrypted.certPath, key: encrypted.keyPath, passphrase: 'correct horse' } });
    t.teardown(() => balancer.stop());
    const { answer, fingerprint256 } = await tlsGet(balancer.port, ca.caPem, '198.51.100.26');
    t.equal(fingerprint256, encrypted.fingerprint256, 'an encrypted key with tls.passphrase serves');
    t.equal(answer.clientIp, '198.51.100.26');
  });
});
