import t from 'tap';
import fc from 'fast-check';
import { isIP } from 'node:net';
import { CidrList, canonicalIp } from '../../../src/shared/ip/address.js';

t.test('canonicalIp: accepted forms and their canonical text', async (t) => {
  const table: Array<{ name: string; input: string; want: string }> = [
    { name: 'IPv4', input: '203.0.113.5', want: '203.0.113.5' },
    { name: 'IPv4 zeros', input: '0.0.0.0', want: '0.0.0.0' },
    { name: 'IPv4 max', input: '255.255.255.255', want: '255.255.255.255' },
    { name: 'IPv6 loopback', input: '::1', want: '::1' },
    { name: 'IPv6 unspecified', input: '::', want: '::' },
    { name: 'IPv6 uppercase, full', input: '2001:0DB8:0000:0000:0000:0000:0000:0001', want: '2001:db8::1' },
    { name: 'longest zero run wins', input: '2001:db8:0:0:1:0:0:0', want: '2001:db8:0:0:1::' },
    { name: 'first of equal runs', input: '2001:0:0:1:0:0:1:1', want: '2001::1:0:0:1:1' },
    { name: 'single zero group not compressed', input: '2001:db8:0:1:1:1:1:1', want: '2001:db8:0:1:1:1:1:1' },
    { name: ':: standing for one group', input: '1:2:3:4:5:6:7::', want: '1:2:3:4:5:6:7:0' },
    { name: ':: at the start', input: '::2:3:4:5:6:7:8', want: '0:2:3:4:5:6:7:8' },
    { name: 'compression in the middle', input: 'fe80::0:1', want: 'fe80::1' },
    { name: 'IPv4-mapped dotted', input: '::ffff:1.2.3.4', want: '1.2.3.4' },
    { name: 'IPv4-mapped hex', input: '::ffff:102:304', want: '1.2.3.4' },
    { name: 'IPv4-mapped uppercase, full', input: '0:0:0:0:0:FFFF:CB00:7105', want: '203.0.113.5' },
    { name: 'IPv4-compatible (deprecated) stays IPv6', input: '::1.2.3.4', want: '::102:304' },
    { name: 'embedded IPv4 after six groups', input: '1:2:3:4:5:6:1.2.3.4', want: '1:2:3:4:5:6:102:304' },
    { name: 'brackets', input: '[::1]', want: '::1' },
    { name: 'brackets with mapped', input: '[::ffff:203.0.113.5]', want: '203.0.113.5' },
    { name: 'zone id', input: 'fe80::1%eth0', want: 'fe80::1' },
    { name: 'zone id in brackets', input: '[fe80::1%25en0]', want: 'fe80::1' },
    { name: 'zone id with dots, dashes, colons', input: 'fe80::1%a.b-c:d', want: 'fe80::1' },
    { name: 'mapped with zone', input: '::ffff:10.0.0.1%lo', want: '10.0.0.1' },
  ];
  for (const { name, input, want } of table) t.equal(canonicalIp(input), want, name);
});

t.test('canonicalIp: not addresses', async (t) => {
  const table: Array<{ name: string; input: string }> = [
    { name: 'empty', input: '' },
    { name: 'unknown', input: 'unknown' },
    { name: 'obfuscated', input: '_hidden' },
    { name: 'hostname', input: 'example.com' },
    { name: 'leading zero', input: '01.2.3.4' },
    { name: 'octet > 255', input: '1.2.3.256' },
    { name: 'three parts', input: '1.2.3' },
    { name: 'five parts', input: '1.2.3.4.5' },
    { name: 'trailing dot', input: '1.2.3.4.' },
    { name: 'four-digit part', input: '1.2.3.1000' },
    { name: 'empty part', input: '1..3.4' },
    { name: 'IPv4 with port', input: '1.2.3.4:80' },
    { name: 'surrounding space', input: ' 1.2.3.4' },
    { name: 'trailing CR', input: '1.2.3.4\r' },
    { name: 'LF inside', input: '1.2.\n3.4' },
    { name: 'NUL', input: '::1\0' },
    { name: 'IPv4 in brackets', input: '[1.2.3.4]' },
    { name: 'unclosed bracket', input: '[::1' },
    { name: 'lone bracket', input: '[' },
    { name: 'empty brackets', input: '[]' },
    { name: 'IPv4 with zone', input: '1.2.3.4%eth0' },
    { name: 'empty zone', input: 'fe80::1%' },
    { name: 'zone with underscore', input: 'fe80::1%a_b' },
    { name: 'zone only', input: '%eth0' },
    { name: 'single colon', input: ':' },
    { name: 'leading single colon', input: ':1::' },
    { name: 'triple colon', input: ':::' },
    { name: 'two ::', input: '1::2::3' },
    { name: 'trailing single colon', input: '1:2:3:4:5:6:7:' },
    { name: 'nine groups', input: '1:2:3:4:5:6:7:8:9' },
    { name: 'seven groups, no ::', input: '1:2:3:4:5:6:7' },
    { name: ':: with eight groups', input: '1:2:3:4::5:6:7:8' },
    { name: 'five hex digits', input: '00001::' },
    { name: 'non-hex', input: '::g' },
    { name: 'IPv4 not last', input: '::1.2.3.4:1' },
    { name: 'IPv4 too late', input: '1:2:3:4:5:6:7:1.2.3.4' },
    { name: 'IPv4 too many with ::', input: '::1:2:3:4:5:6:1.2.3.4' },
    { name: 'bad embedded IPv4', input: '::ffff:1.2.3.04' },
    { name: 'hex before dot', input: '::ffff:a.2.3.4' },
    { name: 'one char', input: '1' },
    { name: 'port after brackets', input: '[::1]:80' },
  ];
  for (const { name, input } of table) t.equal(canonicalIp(input), null, name);
});

/** Characters that make up addresses, so random strings are often (nearly) valid. */
const addressChar = fc.constantFrom(...'0123456789abcdefABCDEF:.%:::..ghxz-'.split(''));
const addressish = fc.oneof(
  fc.string({ unit: addressChar, maxLength: 45 }),
  fc.ipV4(),
  fc.ipV6(),
  fc.ipV4Extended(),
  fc.tuple(fc.ipV6(), fc.string({ unit: addressChar, maxLength: 6 })).map(([a, b]) => a + b),
  fc.tuple(fc.ipV6(), fc.stringMatching(/^%[0-9a-zA-Z.:_-]{0,5}$/)).map(([a, b]) => a + b),
  fc.string({ maxLength: 45 }),
);

t.test('property: canonicalIp accepts exactly what net.isIP accepts', async (t) => {
  fc.assert(
    fc.property(addressish, (text) => {
      const canonical = canonicalIp(text);
      return (canonical !== null) === (isIP(text) !== 0);
    }),
    { numRuns: 20000 },
  );
  t.pass('agrees on 20000 strings');
});

t.test('property: canonical text is a fixed point and matches the WHATWG URL serialiser', async (t) => {
  fc.assert(
    fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (text) => {
      const canonical = canonicalIp(text);
      if (canonical === null) return false;
      if (canonicalIp(canonical) !== canonical) return false;
      if (isIP(text) === 4) return canonical === text;
      const family = isIP(canonical);
      if (family === 4) return canonicalIp(`::ffff:${canonical}`) === canonical; // was IPv4-mapped
      // The URL serialiser writes RFC 5952 text too (lowercase, first longest zero run).
      return `[${canonical}]` === new URL(`http://[${text}]/`).hostname;
    }),
    { numRuns: 20000 },
  );
  t.equal(canonicalIp('[' + '::ffff:1.2.3.4' + ']'), canonicalIp('1.2.3.4'));
});

t.test('CidrList: parse and contains', async (t) => {
  const list = CidrList.parse(['127.0.0.0/8', '::1/128', '10.0.0.1', '2001:db8::/32', '192.168.1.77/24']);
  const yes = [
    '127.0.0.1',
    '127.255.255.255',
    '::ffff:127.0.0.1',
    '[::ffff:7f00:1]',
    '::1',
    '[::1]',
    '10.0.0.1',
    '2001:db8:ffff::1',
    '2001:DB8::%eth0',
    '192.168.1.1',
  ];
  const no = ['128.0.0.1', '10.0.0.2', '::2', '2001:db9::1', '192.168.2.1', 'unknown', '', 'localhost', '::ffff:10.0.0.2'];
  for (const a of yes) t.ok(list.contains(a), `contains ${a}`);
  for (const a of no) t.notOk(list.contains(a), `does not contain ${a}`);

  const mappedRange = CidrList.parse(['::ffff:10.0.0.0/104']);
  t.ok(mappedRange.contains('10.1.2.3'), 'an IPv4-mapped IPv6 range holds IPv4 addresses');
  t.notOk(mappedRange.contains('11.0.0.0'));

  const everything = CidrList.parse(['::/0']);
  t.ok(everything.contains('1.2.3.4'), '::/0 holds IPv4 too');
  t.ok(everything.contains('ffff::'));
  const allV4 = CidrList.parse(['0.0.0.0/0']);
  t.ok(allV4.contains('255.255.255.255'));
  t.notOk(allV4.contains('::1'), '0.0.0.0/0 is IPv4 only');
  t.ok(CidrList.parse(['10.0.0.0/7']).contains('11.255.255.255'), 'prefix not on an octet');
  t.ok(CidrList.parse(['2001:db8::/33']).contains('2001:db8:7fff::'));
  t.notOk(CidrList.parse(['2001:db8::/33']).contains('2001:db8:8000::'));
  t.ok(CidrList.parse(['[::1]/128']).contains('::1'), 'bracketed entry');
  t.notOk(CidrList.parse([]).contains('1.2.3.4'), 'empty list');
});

t.test('CidrList: configuration errors name the entry', async (t) => {
  const bad = [
    'localhost',
    '10.0.0.0/33',
    '::/129',
    '10.0.0.0/',
    '10.0.0.0/08',
    '10.0.0.0/-1',
    '10.0.0.0/1a',
    '10.0.0.0/1000',
    'fe80::1%eth0/64',
    ' 10.0.0.0/8',
    '',
  ];
  for (const entry of bad) {
    t.throws(() => CidrList.parse(['127.0.0.1', entry]), { message: new RegExp(JSON.stringify(entry).replace(/[[\]\\.*+?^$()|{}]/g, '\\$&')) }, `refuses ${JSON.stringify(entry)}`);
  }
});
