import t from 'tap';
import fc from 'fast-check';
import { forwardedForAddress, nodeAddress, xForwardedForAddress } from '../../../src/shared/key/forwarded.js';

t.test('nodeAddress', async (t) => {
  const table: Array<[string, string | null]> = [
    ['203.0.113.5', '203.0.113.5'],
    ['203.0.113.5:8080', '203.0.113.5'],
    ['203.0.113.5:_port', '203.0.113.5'],
    ['203.0.113.5:', null],
    ['203.0.113.5:_', null],
    ['203.0.113.5:_a!', null],
    ['203.0.113.5:123456', null],
    ['203.0.113.5:80a', null],
    ['2001:db8::1', '2001:db8::1'],
    ['[2001:db8::1]', '2001:db8::1'],
    ['[2001:DB8::1]:4711', '2001:db8::1'],
    ['[2001:db8::1]:_x-Y.1', '2001:db8::1'],
    ['[2001:db8::1]x', null],
    ['[2001:db8::1]:', null],
    ['[2001:db8::1', null],
    ['[fe80::1%eth0]:80', 'fe80::1'],
    ['[::ffff:203.0.113.5]:1', '203.0.113.5'],
    ['[203.0.113.5]', null],
    ['[203.0.113.5]:80', null],
    ['unknown', null],
    ['_hidden', null],
    ['', null],
    ['host:80', null],
    [':80', null],
    ['a:b:c', null],
  ];
  for (const [input, want] of table) t.equal(nodeAddress(input), want, JSON.stringify(input));
});

t.test('xForwardedForAddress', async (t) => {
  const table: Array<{ name: string; values: string[]; hops: number; want: string | null }> = [
    { name: 'right-most, hops 1', values: ['198.51.100.22, 203.0.113.7'], hops: 1, want: '203.0.113.7' },
    { name: 'hops 2', values: ['198.51.100.22, 203.0.113.7'], hops: 2, want: '198.51.100.22' },
    { name: 'list shorter than hops', values: ['198.51.100.22, 203.0.113.7'], hops: 3, want: null },
    { name: 'several fields combined in order', values: ['1.1.1.1, 2.2.2.2', '3.3.3.3'], hops: 2, want: '2.2.2.2' },
    { name: 'several fields, hops across them', values: ['1.1.1.1', '2.2.2.2', '3.3.3.3'], hops: 3, want: '1.1.1.1' },
    { name: 'unknown entry: nothing', values: ['1.1.1.1, unknown'], hops: 1, want: null },
    { name: 'garbage entry: nothing (no skipping to the left)', values: ['1.1.1.1, <script>'], hops: 1, want: null },
    { name: 'empty elements ignored', values: ['1.1.1.1,, ,2.2.2.2 ,', ' , '], hops: 2, want: '1.1.1.1' },
    { name: 'OWS and HTAB trimmed', values: ['\t1.1.1.1\t,\t 2.2.2.2 '], hops: 1, want: '2.2.2.2' },
    { name: 'IPv6 and mapped', values: ['::ffff:203.0.113.5, 2001:DB8::1'], hops: 2, want: '203.0.113.5' },
    { name: 'IPv6 canonicalised', values: ['2001:DB8:0:0::1'], hops: 1, want: '2001:db8::1' },
    { name: 'IPv4 with port (Azure style)', values: ['1.1.1.1:5555'], hops: 1, want: '1.1.1.1' },
    { name: 'bracketed IPv6 with port', values: ['[2001:db8::1]:443'], hops: 1, want: '2001:db8::1' },
    { name: 'zone id', values: ['fe80::1%eth0'], hops: 1, want: 'fe80::1' },
    { name: 'no values', values: [], hops: 1, want: null },
    { name: 'empty value', values: [''], hops: 1, want: null },
    { name: 'CR/LF/NUL inside', values: ['1.1.1.1\r\n2.2.2.2\0'], hops: 1, want: null },
    { name: 'hops 0 is nothing', values: ['1.1.1.1'], hops: 0, want: null },
    { name: 'hops fractional is nothing', values: ['1.1.1.1'], hops: 1.5, want: null },
    { name: 'hops NaN is nothing', values: ['1.1.1.1'], hops: Number.NaN, want: null },
  ];
  for (const { name, values, hops, want } of table) t.equal(xForwardedForAddress(values, hops), want, name);

  const thousand = Array.from({ length: 1000 }, (_, i) => `10.0.${i >> 8}.${i & 255}`).join(', ');
  t.equal(xForwardedForAddress([thousand], 1), '10.0.3.231', '1000-entry list');
  t.equal(xForwardedForAddress([thousand], 1000), '10.0.0.0');
  t.equal(xForwardedForAddress([thousand], 1001), null);
  t.equal(xForwardedForAddress(['x'.repeat(65536)], 1), null, '64 KiB garbage entry');
});

t.test('forwardedForAddress (RFC 7239)', async (t) => {
  const table: Array<{ name: string; values: string[]; hops: number; want: string | null }> = [
    { name: 'token', values: ['for=192.0.2.60;proto=http;by=203.0.113.43'], hops: 1, want: '192.0.2.60' },
    { name: 'quoted IPv6 with port', values: ['for="[2001:db8:cafe::17]:4711"'], hops: 1, want: '2001:db8:cafe::17' },
    { name: 'case-insensitive name, for not first', values: ['proto=https; FOR=198.51.100.17'], hops: 1, want: '198.51.100.17' },
    { name: 'two elements, hops 1 and 2', values: ['for=192.0.2.43, for=198.51.100.17'], hops: 2, want: '192.0.2.43' },
    { name: 'right-most element', values: ['for=192.0.2.43, for=198.51.100.17'], hops: 1, want: '198.51.100.17' },
    { name: 'fields combined in order', values: ['for=1.1.1.1', 'for=2.2.2.2, for=3.3.3.3'], hops: 3, want: '1.1.1.1' },
    { name: 'comma and ; inside quotes do not split', values: ['for=1.1.1.1, by="a,b;c";for="2.2.2.2"'], hops: 1, want: '2.2.2.2' },
    { name: 'escaped quote inside quotes', values: ['for=1.1.1.1, by="x\\",y";for=2.2.2.2'], hops: 1, want: '2.2.2.2' },
    { name: 'escaped backslash before closing quote', values: ['for=1.1.1.1, by="x\\\\";for=2.2.2.2'], hops: 1, want: '2.2.2.2' },
    { name: 'quoted-pair in the for value', values: ['for="\\1.2.3.4"'], hops: 1, want: '1.2.3.4' },
    { name: 'unterminated quoted for value', values: ['for="1.2.3.4'], hops: 1, want: '1.2.3.4' },
    { name: 'trailing backslash in quotes', values: ['for="1.2.3.4\\'], hops: 1, want: null },
    { name: 'for=unknown', values: ['for=unknown'], hops: 1, want: null },
    { name: 'obfuscated', values: ['for=_hidden, for=1.1.1.1'], hops: 2, want: null },
    { name: 'quoted IPv4 with port', values: ['for="1.1.1.1:80"'], hops: 1, want: '1.1.1.1' },
    { name: 'mapped IPv6', values: ['for="[::ffff:203.0.113.5]"'], hops: 1, want: '203.0.113.5' },
    { name: 'zone id', values: ['for="[fe80::1%eth0]:80"'], hops: 1, want: 'fe80::1' },
    { name: 'no for in the element', values: ['for=1.1.1.1, proto=http;by=2.2.2.2'], hops: 1, want: null },
    { name: 'for without =', values: ['for;for=1.1.1.1'], hops: 1, want: '1.1.1.1' },
    { name: 'quoted pair name skipped', values: ['"for"=1.1.1.1;for=2.2.2.2'], hops: 1, want: '2.2.2.2' },
    { name: 'forx is another name', values: ['forx=1.1.1.1;for=2.2.2.2'], hops: 1, want: '2.2.2.2' },
    { name: 'fox is another name', values: ['fox=1.1.1.1;fob=3.3.3.3;fr=4.4.4.4;for=2.2.2.2'], hops: 1, want: '2.2.2.2' },
    { name: 'OWS around pairs', values: [' for=1.1.1.1 ; proto=http , for=2.2.2.2 ;by=x '], hops: 2, want: '1.1.1.1' },
    { name: 'empty elements ignored', values: ['for=1.1.1.1,, ,', ''], hops: 1, want: '1.1.1.1' },
    { name: 'shorter than hops', values: ['for=1.1.1.1'], hops: 2, want: null },
    { name: 'no values', values: [], hops: 1, want: null },
    { name: 'empty for', values: ['for='], hops: 1, want: null },
    { name: 'unbalanced quote on the left does not matter for hops 1', values: ['for="1.1.1.1, for=2.2.2.2'], hops: 1, want: '2.2.2.2' },
    { name: 'bad hops', values: ['for=1.1.1.1'], hops: -1, want: null },
  ];
  for (const { name, values, hops, want } of table) t.equal(forwardedForAddress(values, hops), want, name);

  const thousand = Array.from({ length: 1000 }, (_, i) => `for=10.0.${i >> 8}.${i & 255};proto=http`).join(', ');
  t.equal(forwardedForAddress([thousand], 1), '10.0.3.231', '1000-element list');
  t.equal(forwardedForAddress([thousand], 1000), '10.0.0.0');
  t.equal(forwardedForAddress(['"'.repeat(65536)], 1), null, '64 KiB of quotes');
  t.equal(forwardedForAddress(['\\'.repeat(30000) + '"'.repeat(30000)], 1), null, 'backslash runs');
});

t.test('property: never throws on hostile lists', async (t) => {
  const unit = fc.constantFrom(...'for=,;"\\ 1.2:[]_unknown'.split(''));
  fc.assert(
    fc.property(fc.array(fc.string({ unit, maxLength: 40 }), { maxLength: 4 }), fc.integer({ min: -1, max: 5 }), (values, hops) => {
      const a = forwardedForAddress(values, hops);
      const b = xForwardedForAddress(values, hops);
      return (a === null || typeof a === 'string') && (b === null || typeof b === 'string');
    }),
    { numRuns: 5000 },
  );
  t.pass();
});
