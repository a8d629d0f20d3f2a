/**
 * Hot path of every connection in the master: parse the HTTP/1.x request head,
 * then derive the client key. Measures ns/op on a realistic ~500-byte browser
 * head with a Cookie and an X-Forwarded-For field.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/head-parse.js [iterations]
 */
import { canonicalIp } from '../src/shared/ip/address.js';
import { deriveKey, type KeyContext, type KeyRules } from '../src/shared/key/derive.js';
import { parseRequestHead } from '../src/shared/protocol/http1.js';

const HEAD = Buffer.from(
  [
    'GET /socket.io/?EIO=4&transport=polling&t=OqX3kZ1 HTTP/1.1',
    'Host: app.example.com',
    'User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
    'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
    'Accept-Language: en-US,en;q=0.5',
    'Accept-Encoding: gzip, deflate, br',
    'Referer: https://app.example.com/dashboard',
    'Cookie: _ga=GA1.2.1234567890.1700000000; theme=dark; sid=s%3A9f8e7d6c5b4a39281706f5e4d3c2b1a0; lang=en',
    'X-Forwarded-For: 198.51.100.22, 203.0.113.7',
    'X-Forwarded-Proto: https',
    'Connection: keep-alive',
    '',
    '',
  ].join('\r\n'),
  'latin1',
);

const ITERATIONS = Number(process.argv[2] ?? 1_000_000);
const MAX_BYTES = 16384;

function measure(name: string, op: () => unknown): void {
  // Warm up so that the optimising compiler has run, then time one bounded loop.
  for (let i = 0; i < 50_000; i++) op();
  let sink: unknown;
  const start = process.hrtime.bigint();
  for (let i = 0; i < ITERATIONS; i++) sink = op();
  const elapsed = Number(process.hrtime.bigint() - start);
  if (sink === undefined) throw new Error('unreachable');
  console.log(`${name.padEnd(40)} ${(elapsed / ITERATIONS).toFixed(1).padStart(8)} ns/op  (${ITERATIONS} iterations)`);
}

const forwardedRules: KeyRules = { order: ['forwarded', 'remote'], cookie: 'sid', forwardedTrustedHops: 1 };
const defaultRules: KeyRules = { order: ['cookie', 'proxy', 'forwarded', 'remote'], cookie: 'sid', forwardedTrustedHops: 1 };
const ctxFor = (head: KeyContext['head']): KeyContext => ({
  head,
  proxySource: null,
  peerAddress: '::ffff:127.0.0.1',
  peerTrusted: true,
});

console.log(`head: ${HEAD.length} bytes; node ${process.version}`);
measure('parseRequestHead', () => parseRequestHead(HEAD, 0, MAX_BYTES));
measure('parse + deriveKey (forwarded, hops 1)', () => {
  const r = parseRequestHead(HEAD, 0, MAX_BYTES);
  return deriveKey(ctxFor(r.kind === 'done' ? r.value : null), forwardedRules);
});
measure('parse + deriveKey (default order: cookie)', () => {
  const r = parseRequestHead(HEAD, 0, MAX_BYTES);
  return deriveKey(ctxFor(r.kind === 'done' ? r.value : null), defaultRules);
});
measure('canonicalIp (IPv4)', () => canonicalIp('203.0.113.7'));
measure('canonicalIp (IPv4-mapped IPv6)', () => canonicalIp('::ffff:127.0.0.1'));
measure('canonicalIp (IPv6)', () => canonicalIp('2001:DB8:0:0:1:0:0:1'));
