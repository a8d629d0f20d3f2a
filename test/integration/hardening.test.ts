import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import t from 'tap';
import { admin, connect, demoGet, exchange, pollUntil, processStats, readAll, request, startBalancer } from '../helpers/balancer.js';

t.setTimeout(240_000);

/** A ClientHello's first bytes (TLS record header + handshake header), as any TLS client sends them. */
const CLIENT_HELLO = Buffer.from('160301020001' + '0001fc0303' + '00'.repeat(32), 'hex');

function refusedCount(metrics: string, reason: string): number {
  return Number(new RegExp(`sticky_refused_connections_total\\{reason="${reason}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
}

t.test('silent and half-sent clients are closed at the peek timeout; others are served meanwhile', async (t) => {
  const peekTimeoutMs = 2000;
  const balancer = await startBalancer({ limits: { peekBytes: 16384, peekTimeoutMs } });
  t.teardown(() => balancer.stop());
  const before = processStats(balancer.proc.pid!);

  const stalled: Array<{ socket: net.Socket; bytes: Promise<Buffer> }> = [];
  for (let i = 0; i < 1000; i++) {
    const socket = await connect(balancer.port);
    // Half of them send part of a head (even a PROXY header) and stall.
    if (i % 2 === 1) socket.write(i % 4 === 1 ? 'GET / HTTP/1.1\r\nhost: x\r\nx-forwarded-for: 1.2' : 'PROXY TCP4 198.51.100.22 ');
    stalled.push({ socket, bytes: readAll(socket) });
  }
  // Other clients are served while the 1000 hold their connections.
  for (let i = 0; i < 50; i++) {
    const answer = await demoGet(balancer.port, { 'x-forwarded-for': `198.51.100.${i + 1}` });
    t.equal(answer.key, `198.51.100.${i + 1}`);
  }
  const answers = await Promise.all(stalled.map((s) => s.bytes));
  t.ok(answers.every((bytes) => bytes.length === 0), 'all 1000 were closed without a byte written');
  const metrics = (await admin(balancer.adminPort!, '/metrics')).body.toString();
  t.equal(refusedCount(metrics, 'ERR_PEEK_TIMEOUT'), 1000, 'each counted as ERR_PEEK_TIMEOUT');
  const after = await pollUntil(() => {
    const stats = processStats(balancer.proc.pid!);
    return stats.fds <= before.fds ? stats : undefined;
  });
  t.ok(after.fds <= before.fds, `descriptors back to ${before.fds}`);
});

t.test('bytes that cannot be HTTP/1.x are handed off at once, not at the peek timeout', async (t) => {
  // A peek timeout far longer than the test: an answer can only come from a worker the master handed the TLS bytes to.
  const balancer = await startBalancer({ limits: { peekBytes: 16384, peekTimeoutMs: 600_000 } });
  t.teardown(() => balancer.stop());
  for (const [name, bytes] of [
    ['TLS ClientHello', CLIENT_HELLO],
    ['HTTP/2 preface', Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')],
    ['SSH banner', Buffer.from('SSH-2.0-OpenSSH_9.2\r\n')],
  ] as const) {
    const answer = (await exchange(balancer.port, bytes)).toString('latin1');
    t.match(answer, /^HTTP\/1\.1 400/, `${name}: the worker's http server answered (handed off without waiting)`);
  }
  const metrics = (await admin(balancer.adminPort!, '/metrics')).body.toString();
  t.match(metrics, /sticky_handoffs_total\{worker="\d+",key_source="remote"\} [1-9]/, 'keyed by the next source (remote)');
});

t.test('hostile values: a defined result for each, and the master keeps serving', async (t) => {
  const balancer = await startBalancer({ key: { order: ['cookie', 'proxy', 'forwarded', 'remote'] } });
  t.teardown(() => balancer.stop());
  const keyOf = async (headers: Record<string, string | string[]>): Promise<{ key: string | null; keySource: string | null; pid: number }> =>
    demoGet(balancer.port, headers);

  const v4 = await keyOf({ 'x-forwarded-for': '203.0.113.5' });
  const mapped = await keyOf({ 'x-forwarded-for': '::ffff:203.0.113.5' });
  t.equal(mapped.key, '203.0.113.5', 'IPv4-mapped IPv6 gives the IPv4 key');
  t.equal(mapped.pid, v4.pid, 'and the same worker');

  t.match(await keyOf({ 'x-forwarded-for': 'unknown' }), { keySource: 'remote', key: '127.0.0.1' }, 'unknown: next source');
  t.match(await keyOf({ 'x-forwarded-for': '<script>, 999.1.1.1' }), { keySource: 'remote' }, 'garbage: next source');
  const list = Array.from({ length: 1000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.1`).join(', ');
  t.match(await keyOf({ 'x-forwarded-for': `${list}, 198.51.100.77` }), { keySource: 'forwarded', key: '198.51.100.77' }, '1000-entry list: the right-most entry');
  t.match(await keyOf({ 'x-forwarded-for': ['6.6.6.6, 198.51.100.1', '198.51.100.2'] }), { key: '198.51.100.2' }, 'several X-Forwarded-For fields combine in order');
  t.match(await keyOf({ 'x-forwarded-for': '[2001:db8::7]:443' }), { key: '2001:db8::7' }, 'bracketed IPv6 with a port');
  t.match(await keyOf({ 'x-forwarded-for': 'fe80::1%eth0' }), { key: 'fe80::1' }, 'IPv6 zone id stripped');
  t.match(await keyOf({ forwarded: 'for="[2001:db8::9]:4711";proto=https' }), { keySource: 'forwarded', key: '2001:db8::9' }, 'RFC 7239 Forwarded');
  const cookies = Array.from({ length: 1000 }, (_, i) => `c${i}=v${i}`).join('; ');
  t.match(await keyOf({ cookie: `${cookies}; sid=deep-session` }), { keySource: 'cookie', key: 'deep-session' }, 'thousands of cookies');

  // A head over peekBytes: handed off by the next key sources; Node answers 431.
  const big = await exchange(balancer.port, `GET / HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(65536)}\r\n\r\n`);
  t.match(big.toString('latin1'), /^HTTP\/1\.1 431/, '64 KiB head: handed off, the app server answers 431');
  // NUL and bare CR inside a value: not a valid head; the app server answers 400.
  for (const bad of ['x-forwarded-for: 1.2.3.4\0', 'x-forwarded-for: 1.2\r3.4', 'cookie: sid=a\0b']) {
    const answer = await exchange(balancer.port, `GET / HTTP/1.1\r\nhost: x\r\n${bad}\r\n\r\n`);
    t.match(answer.toString('latin1'), /^HTTP\/1\.1 400/, `${JSON.stringify(bad)}: 400 from the app server`);
  }

  // 300 connections of random bytes.
  await Promise.all(Array.from({ length: 300 }, (_, i) => exchange(balancer.port, randomBytes(1 + ((i * 7919) % 4096)))));
  const answer = await keyOf({ 'x-forwarded-for': '198.51.100.200' });
  t.equal(answer.key, '198.51.100.200', 'still serving');
  const stats = processStats(balancer.proc.pid!);
  t.ok(stats.rssBytes < 200 * 1024 * 1024, `master RSS ${Math.round(stats.rssBytes / 1048576)} MB < 200 MB`);
});

t.test('limits.maxConnections: beyond it new connections are closed at once', async (t) => {
  const balancer = await startBalancer({ limits: { peekBytes: 16384, peekTimeoutMs: 30_000, maxConnections: 20 } });
  t.teardown(() => balancer.stop());
  const held: net.Socket[] = [];
  for (let i = 0; i < 20; i++) held.push(await connect(balancer.port));
  // Wait until the master holds all 20 (they are peeking: no bytes sent).
  await pollUntil(async () => {
    const metrics = (await admin(balancer.adminPort!, '/metrics')).body.toString();
    return /sticky_peeking_connections \d+/.exec(metrics)?.[0] === 'sticky_peeking_connections 20' ? true : undefined;
  });
  const refused = await exchange(balancer.port, 'GET / HTTP/1.1\r\nhost: x\r\n\r\n');
  t.equal(refused.length, 0, 'the 21st connection is closed without a byte');
  const metrics = (await admin(balancer.adminPort!, '/metrics')).body.toString();
  t.equal(refusedCount(metrics, 'ERR_MAX_CONNECTIONS'), 1, 'counted');
  for (const socket of held) socket.destroy();
  const served = await pollUntil(async () => {
    try {
      return await demoGet(balancer.port);
    } catch {
      return undefined;
    }
  });
  t.equal(served.keySource, 'remote', 'served again once connections closed');
});

t.test('worker-side headersTimeout fires for connections fed by the master', async (t) => {
  const balancer = await startBalancer({ limits: { peekBytes: 16384, peekTimeoutMs: 5000, headersTimeoutMs: 1500, requestTimeoutMs: 3000 } });
  t.teardown(() => balancer.stop());
  const socket = await connect(balancer.port);
  const all = readAll(socket);
  socket.write('GET /first HTTP/1.1\r\nhost: x\r\n\r\n');
  // After the first answer the connection is the worker's; a second head that stalls must be timed out there.
  await new Promise<void>((resolve) => {
    let seen = '';
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString('latin1');
      if (seen.includes('"keySource"')) {
        socket.off('data', onData);
        resolve();
      }
    };
    socket.on('data', onData);
  });
  socket.write('GET /second HTTP/1.1\r\nhost: x\r\n');
  const text = (await all).toString('latin1');
  t.match(text, /HTTP\/1\.1 408/, 'the worker answered 408 Request Timeout and closed');
  const plain = await request(balancer.port);
  t.equal(plain.status, 200, 'the worker still serves');
});
