import t from 'tap';
import fc from 'fast-check';
import { deriveKey, type KeyContext, type KeyRules, type KeySource } from '../../../src/shared/key/derive.js';
import { parseRequestHead, type RequestHead } from '../../../src/shared/protocol/http1.js';

// Every source, the cookie first: an order a user may choose (the default leaves the cookie out).
const DEFAULT_ORDER: readonly KeySource[] = ['cookie', 'proxy', 'forwarded', 'remote'];
const rules = (over: Partial<KeyRules> = {}): KeyRules => ({ order: DEFAULT_ORDER, cookie: 'sid', forwardedTrustedHops: 1, ...over });

function head(fields: string): RequestHead {
  const result = parseRequestHead(Buffer.from(`GET / HTTP/1.1\r\n${fields}\r\n`, 'latin1'), 0, 1 << 20);
  if (result.kind !== 'done') throw new Error(`fixture is not a head: ${JSON.stringify(result)}`);
  return result.value;
}

const ctx = (over: Partial<KeyContext> = {}): KeyContext => ({
  head: null,
  proxySource: null,
  peerAddress: '10.0.0.9',
  peerTrusted: true,
  ...over,
});

t.test('key rules', async (t) => {
  const table: Array<{ name: string; ctx: KeyContext; rules?: KeyRules; key: string; source: KeySource }> = [
    {
      name: 'cookie wins over X-Forwarded-For when listed first',
      ctx: ctx({ head: head('Cookie: a=1; sid=s1\r\nX-Forwarded-For: 1.1.1.1\r\n') }),
      key: 's1',
      source: 'cookie',
    },
    {
      name: 'proxy source when there is no cookie',
      ctx: ctx({ head: head('X-Forwarded-For: 1.1.1.1\r\n'), proxySource: '::ffff:198.51.100.22' }),
      key: '198.51.100.22',
      source: 'proxy',
    },
    { name: 'forwarded, trusted hops 1', ctx: ctx({ head: head('X-Forwarded-For: 1.1.1.1, 2.2.2.2\r\n') }), key: '2.2.2.2', source: 'forwarded' },
    {
      name: 'forwarded, trusted hops 2',
      ctx: ctx({ head: head('X-Forwarded-For: 1.1.1.1, 2.2.2.2\r\n') }),
      rules: rules({ forwardedTrustedHops: 2 }),
      key: '1.1.1.1',
      source: 'forwarded',
    },
    {
      name: 'untrusted peer: X-Forwarded-For ignored',
      ctx: ctx({ head: head('X-Forwarded-For: 1.1.1.1\r\n'), peerTrusted: false }),
      key: '10.0.0.9',
      source: 'remote',
    },
    {
      name: 'untrusted peer: Forwarded ignored',
      ctx: ctx({ head: head('Forwarded: for=1.1.1.1\r\n'), peerTrusted: false }),
      key: '10.0.0.9',
      source: 'remote',
    },
    { name: 'X-Forwarded-For: unknown falls through', ctx: ctx({ head: head('X-Forwarded-For: unknown\r\n') }), key: '10.0.0.9', source: 'remote' },
    { name: 'garbage falls through', ctx: ctx({ head: head('X-Forwarded-For: 1.1.1.1, not-an-ip\r\n') }), key: '10.0.0.9', source: 'remote' },
    {
      name: 'list shorter than hops falls through',
      ctx: ctx({ head: head('X-Forwarded-For: 1.1.1.1\r\n') }),
      rules: rules({ forwardedTrustedHops: 2 }),
      key: '10.0.0.9',
      source: 'remote',
    },
    {
      name: 'multiple X-Forwarded-For fields combined in order',
      ctx: ctx({ head: head('X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2, 3.3.3.3\r\n') }),
      rules: rules({ forwardedTrustedHops: 3 }),
      key: '1.1.1.1',
      source: 'forwarded',
    },
    {
      name: 'Forwarded quoted IPv6 with port when there is no X-Forwarded-For',
      ctx: ctx({ head: head('Forwarded: for=192.0.2.43, for="[2001:DB8:cafe::17]:4711"\r\n') }),
      key: '2001:db8:cafe::17',
      source: 'forwarded',
    },
    {
      name: 'X-Forwarded-For preferred over Forwarded',
      ctx: ctx({ head: head('Forwarded: for=5.5.5.5\r\nX-Forwarded-For: 6.6.6.6\r\n') }),
      key: '6.6.6.6',
      source: 'forwarded',
    },
    { name: 'for=unknown falls through', ctx: ctx({ head: head('Forwarded: for=unknown\r\n') }), key: '10.0.0.9', source: 'remote' },
    { name: 'IPv4-mapped == IPv4 (forwarded)', ctx: ctx({ head: head('X-Forwarded-For: ::ffff:203.0.113.5\r\n') }), key: '203.0.113.5', source: 'forwarded' },
    { name: 'IPv6 zone id and brackets (forwarded)', ctx: ctx({ head: head('X-Forwarded-For: [fe80::1%eth0]:80\r\n') }), key: 'fe80::1', source: 'forwarded' },
    { name: 'IPv4-mapped == IPv4 (remote)', ctx: ctx({ peerAddress: '::ffff:203.0.113.5' }), key: '203.0.113.5', source: 'remote' },
    { name: 'remote IPv6 canonicalised', ctx: ctx({ peerAddress: '[2001:DB8::0:1]' }), key: '2001:db8::1', source: 'remote' },
    { name: 'remote unknown is empty', ctx: ctx({ peerAddress: '' }), key: '', source: 'remote' },
    { name: 'remote not an address is empty', ctx: ctx({ peerAddress: '/tmp/sock' }), key: '', source: 'remote' },
    { name: 'no head: cookie and forwarded yield nothing', ctx: ctx({ head: null }), key: '10.0.0.9', source: 'remote' },
    { name: 'empty cookie falls through', ctx: ctx({ head: head('Cookie: sid=\r\nX-Forwarded-For: 1.1.1.1\r\n') }), key: '1.1.1.1', source: 'forwarded' },
    { name: 'quoted cookie', ctx: ctx({ head: head('Cookie: sid="q"\r\n') }), key: 'q', source: 'cookie' },
    { name: 'xsid is not sid', ctx: ctx({ head: head('Cookie: xsid=1\r\n') }), key: '10.0.0.9', source: 'remote' },
    { name: 'proxy source not an address yields nothing', ctx: ctx({ proxySource: 'unix:/x' }), key: '10.0.0.9', source: 'remote' },
    {
      name: 'order [forwarded, cookie]',
      ctx: ctx({ head: head('Cookie: sid=s1\r\nX-Forwarded-For: 1.1.1.1\r\n') }),
      rules: rules({ order: ['forwarded', 'cookie', 'remote'] }),
      key: '1.1.1.1',
      source: 'forwarded',
    },
    {
      name: 'order without remote still gives the remote key',
      ctx: ctx({ head: head('Cookie: a=1\r\n') }),
      rules: rules({ order: ['cookie'] }),
      key: '10.0.0.9',
      source: 'remote',
    },
    {
      name: 'unknown source names are skipped',
      ctx: ctx(),
      rules: rules({ order: ['bogus' as KeySource, 'remote'] }),
      key: '10.0.0.9',
      source: 'remote',
    },
  ];
  for (const { name, ctx: c, rules: r = rules(), key, source } of table) t.same(deriveKey(c, r), { key, source }, name);
});

t.test('same key for ::ffff:203.0.113.5 and 203.0.113.5 from every address source', async (t) => {
  for (const [a, b] of [['::ffff:203.0.113.5', '203.0.113.5'], ['[::ffff:cb00:7105]', '203.0.113.5']] as const) {
    t.same(deriveKey(ctx({ peerAddress: a }), rules()), deriveKey(ctx({ peerAddress: b }), rules()));
    t.same(deriveKey(ctx({ proxySource: a }), rules()), deriveKey(ctx({ proxySource: b }), rules()));
    t.same(
      deriveKey(ctx({ head: head(`X-Forwarded-For: ${a}\r\n`) }), rules()),
      deriveKey(ctx({ head: head(`X-Forwarded-For: ${b}\r\n`) }), rules()),
    );
  }
});

t.test('hostile values: no throw, defined result', async (t) => {
  const cookies = Array.from({ length: 4000 }, (_, i) => `c${i}=v${i}`).join('; ');
  t.same(deriveKey(ctx({ head: head(`Cookie: ${cookies}\r\nCookie: sid=late\r\n`) }), rules()), { key: 'late', source: 'cookie' });
  const list = Array.from({ length: 1000 }, (_, i) => `192.0.2.${i % 250}`).join(', ');
  t.same(deriveKey(ctx({ head: head(`X-Forwarded-For: ${list}\r\n`) }), rules()), { key: '192.0.2.249', source: 'forwarded' });
  const big = 'a'.repeat(65536);
  t.same(deriveKey(ctx({ head: head(`X-Forwarded-For: ${big}\r\nCookie: z=${big}\r\n`) }), rules()), { key: '10.0.0.9', source: 'remote' });
  // Heads built by hand (not by the parser) may hold anything.
  const raw: RequestHead = { method: 'GET', target: '/', version: '1.1', host: undefined, cookie: 'sid=\r\n\0', forwardedFor: ['1.1.1.1\0'], forwarded: [], upgrade: undefined };
  t.same(deriveKey(ctx({ head: raw }), rules()), { key: '\r\n\0', source: 'cookie' });
  t.same(deriveKey(ctx({ head: raw }), rules({ order: ['forwarded', 'remote'] })), { key: '10.0.0.9', source: 'remote' });
});

t.test('property: deriveKey never throws and always answers a listed source or remote', async (t) => {
  const text = fc.string({ unit: fc.constantFrom(...'sid=;, "[]:.1f%\r\n\0abunknow_'.split('')), maxLength: 30 });
  const source = fc.constantFrom<KeySource>('cookie', 'proxy', 'forwarded', 'remote');
  fc.assert(
    fc.property(
      fc.record({
        cookie: fc.option(text, { nil: undefined }),
        forwardedFor: fc.array(text, { maxLength: 3 }),
        forwarded: fc.array(text, { maxLength: 3 }),
        proxySource: fc.option(text, { nil: null }),
        peerAddress: text,
        peerTrusted: fc.boolean(),
        order: fc.array(source, { maxLength: 4 }),
        hops: fc.integer({ min: -1, max: 4 }),
      }),
      (r) => {
        const h: RequestHead = { method: 'GET', target: '/', version: '1.1', host: undefined, cookie: r.cookie, forwardedFor: r.forwardedFor, forwarded: r.forwarded, upgrade: undefined };
        const result = deriveKey(
          { head: h, proxySource: r.proxySource, peerAddress: r.peerAddress, peerTrusted: r.peerTrusted },
          { order: r.order, cookie: 'sid', forwardedTrustedHops: r.hops },
        );
        return typeof result.key === 'string' && (r.order.includes(result.source) || result.source === 'remote');
      },
    ),
    { numRuns: 5000 },
  );
  t.pass();
});
