import t, { type Test } from 'tap';
import fc from 'fast-check';
import { isIPv4, isIPv6 } from 'node:net';
import {
  classifyIPv4,
  classifyIPv6,
  encodeProxyV1,
  isIPv4Text,
  isIPv6Text,
  parseProxyV1,
  PROXY_V1_MAX_BYTES,
  type Viability,
} from '../../../src/shared/protocol/proxy-v1.js';
import type { ProxyHeader } from '../../../src/shared/protocol/proxy.js';
import type { ParseResult } from '../../../src/shared/protocol/result.js';
import { ERROR_CODES, type ErrorCode } from '../../../src/shared/errors.js';
import { feedAllWays } from '../../helpers/split.js';

const FULL6 = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';

/** Feeds `input` every way and checks every way gives the whole result. */
function allWays(t: Test, input: Buffer): ParseResult<ProxyHeader> {
  const outcomes = feedAllWays(input, parseProxyV1);
  const whole = outcomes[0]!;
  for (const outcome of outcomes) t.same(outcome.result, whole.result, `${outcome.way} agrees`);
  return whole.result;
}

t.test('PROXY_V1_MAX_BYTES is the spec worst case', async (t) => {
  const worst = `PROXY UNKNOWN ${FULL6} ${FULL6} 65535 65535\r\n`;
  t.equal(worst.length, PROXY_V1_MAX_BYTES);
  t.equal(PROXY_V1_MAX_BYTES, 5 + 1 + 7 + 1 + 39 + 1 + 39 + 1 + 5 + 1 + 5 + 2);
});

const tcp = (family: 'TCP4' | 'TCP6', src: string, dst: string, sport: number, dport: number): ProxyHeader => ({
  version: 1,
  command: 'PROXY',
  family,
  transport: 'STREAM',
  source: { address: src, port: sport },
  destination: { address: dst, port: dport },
  tlvs: {},
});
const UNKNOWN: ProxyHeader = {
  version: 1, command: 'PROXY', family: 'UNKNOWN', transport: 'UNSPEC', source: null, destination: null, tlvs: {},
};

const valid: Array<{ name: string; input: string; header: ProxyHeader; consumed?: number }> = [
  {
    name: 'spec 2.1 example before an HTTP request',
    input: 'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\nHost: 192.168.0.11\r\n\r\n',
    header: tcp('TCP4', '192.168.0.1', '192.168.0.11', 56324, 443),
  },
  {
    name: 'the spec example',
    input: 'PROXY TCP4 198.51.100.22 203.0.113.7 35646 80\r\nGET / HTTP/1.1\r\n\r\n',
    header: tcp('TCP4', '198.51.100.22', '203.0.113.7', 35646, 80),
  },
  {
    name: 'spec longest TCP4 line (56)',
    input: 'PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n',
    header: tcp('TCP4', '255.255.255.255', '255.255.255.255', 65535, 65535),
    consumed: 56,
  },
  {
    name: 'spec longest TCP6 line (104)',
    input: `PROXY TCP6 ${FULL6} ${FULL6} 65535 65535\r\n`,
    header: tcp('TCP6', FULL6, FULL6, 65535, 65535),
    consumed: 104,
  },
  { name: 'spec UNKNOWN short form (15)', input: 'PROXY UNKNOWN\r\n', header: UNKNOWN, consumed: 15 },
  {
    name: 'spec UNKNOWN worst case (107)',
    input: `PROXY UNKNOWN ${FULL6} ${FULL6} 65535 65535\r\nAB`,
    header: UNKNOWN,
    consumed: 107,
  },
  {
    name: 'go-proxyproto: UNKNOWN with addresses and an invalid port (ignored)',
    input: 'PROXY UNKNOWN 127.0.0.1 127.0.0.1 65536 65536\r\n',
    header: UNKNOWN,
  },
  { name: 'UNKNOWN followed by arbitrary bytes', input: 'PROXY UNKNOWN \x00\xff\t??  x\r\n', header: UNKNOWN },
  { name: 'UNKNOWN then a space and CRLF', input: 'PROXY UNKNOWN \r\n', header: UNKNOWN },
  { name: 'ports 0', input: 'PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n', header: tcp('TCP4', '0.0.0.0', '0.0.0.0', 0, 0) },
  {
    name: 'go-proxyproto: TCP6 with IPv4-mapped addresses',
    input: 'PROXY TCP6 ::ffff:127.0.0.1 ::ffff:127.0.0.1 65533 65533\r\nGET /',
    header: tcp('TCP6', '::ffff:127.0.0.1', '::ffff:127.0.0.1', 65533, 65533),
  },
  {
    name: 'TCP6 short forms and upper case kept as written',
    input: 'PROXY TCP6 :: FE80::A 1 2\r\n',
    header: tcp('TCP6', '::', 'FE80::A', 1, 2),
  },
  {
    name: 'TCP6 "::" standing for one group at either end',
    input: 'PROXY TCP6 1:2:3:4:5:6:7:: ::2:3:4:5:6:7:8 443 8443\r\n',
    header: tcp('TCP6', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', 443, 8443),
  },
  {
    name: 'TCP6 full form with a dotted tail and leading zeros in groups',
    input: 'PROXY TCP6 0000:0:0:0:0:ffff:10.0.0.1 2001:db8::1.2.3.4 1 2\r\n',
    header: tcp('TCP6', '0000:0:0:0:0:ffff:10.0.0.1', '2001:db8::1.2.3.4', 1, 2),
  },
  {
    name: 'only the first header counts: a second PROXY line is application data',
    input: 'PROXY UNKNOWN\r\nPROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n',
    header: UNKNOWN,
    consumed: 15,
  },
];

t.test('valid lines, fed whole, byte by byte and split at every offset', async (t) => {
  for (const row of valid) {
    t.test(row.name, async (t) => {
      const input = Buffer.from(row.input, 'latin1');
      const consumed = row.consumed ?? input.indexOf('\r\n') + 2;
      const result = allWays(t, input);
      t.same(result, { kind: 'done', value: row.header, consumed });
      // Byte by byte, nothing is decided before the LF arrives.
      const byteByByte = feedAllWays(input, parseProxyV1)[1]!;
      t.equal(byteByByte.decidedAt, consumed);
      t.ok(byteByByte.pending.every((r) => r.kind === 'need-more'));
    });
  }
});

const invalid: Array<{ name: string; input: string; code: ErrorCode; decidedAt?: number }> = [
  // go-proxyproto v1_test.go
  { name: 'go: "PROXY \\n"', input: 'PROXY \n', code: 'ERR_PROXY_V1_BAD_SYNTAX' },
  { name: 'go: "PROXY \\r\\n"', input: 'PROXY \r\n', code: 'ERR_PROXY_V1_BAD_SYNTAX' },
  { name: 'go: unknown family SOMETHING', input: 'PROXY SOMETHING\r\n', code: 'ERR_PROXY_V1_BAD_SYNTAX', decidedAt: 7 },
  { name: 'go: invalid IP address', input: 'PROXY TCP4 invalid invalid 65533 65533\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS', decidedAt: 12 },
  { name: 'go: TCP6 with IPv4 addresses', input: 'PROXY TCP6 127.0.0.1 127.0.0.1 65533 65533\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS', decidedAt: 15 },
  { name: 'go: TCP4 with IPv6 addresses', input: 'PROXY TCP4 ::1 ::1 65533 65533\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS', decidedAt: 12 },
  { name: 'go: TCP4 with IPv4-mapped addresses', input: 'PROXY TCP4 ::ffff:127.0.0.1 ::ffff:127.0.0.1 65533 65533\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS' },
  { name: 'go: TCP4 with invalid port', input: 'PROXY TCP4 127.0.0.1 127.0.0.1 65536 65536\r\n', code: 'ERR_PROXY_V1_BAD_PORT', decidedAt: 36 },
  {
    name: 'go: header too long (UNKNOWN, 108 bytes)',
    input: `PROXY UNKNOWN ${FULL6} ${FULL6} 65535 65535 \r\n`,
    code: 'ERR_PROXY_V1_TOO_LONG',
    decidedAt: 107,
  },
  // family token
  { name: 'lower-case family', input: 'PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n', code: 'ERR_PROXY_V1_BAD_SYNTAX', decidedAt: 7 },
  { name: 'TCP5', input: 'PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n', code: 'ERR_PROXY_V1_BAD_SYNTAX', decidedAt: 10 },
  { name: 'UDP4 (v1 is TCP only)', input: 'PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n', code: 'ERR_PROXY_V1_BAD_SYNTAX', decidedAt: 8 },
  { name: 'two spaces after PROXY', input: 'PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n', code: 'ERR_PROXY_V1_BAD_SYNTAX', decidedAt: 7 },
  { name: 'TCP4 straight to CRLF', input: 'PROXY TCP4\r\n', code: 'ERR_PROXY_V1_BAD_SYNTAX' },
  { name: 'UNKNOWNX', input: 'PROXY UNKNOWNX\r\n', code: 'ERR_PROXY_V1_BAD_SYNTAX', decidedAt: 14 },
  { name: 'UNKNOWN with a bare LF', input: 'PROXY UNKNOWN\n', code: 'ERR_PROXY_V1_BAD_SYNTAX' },
  { name: 'UNKNOWN with CR then not LF', input: 'PROXY UNKNOWN\rX', code: 'ERR_PROXY_V1_BAD_SYNTAX' },
  { name: 'UNKNOWN with a bare LF inside the ignored part', input: 'PROXY UNKNOWN foo\nbar\r\n', code: 'ERR_PROXY_V1_BAD_SYNTAX', decidedAt: 18 },
  { name: 'UNKNOWN with no CRLF in 107 bytes', input: `PROXY UNKNOWN ${'x'.repeat(93)}\r\n`, code: 'ERR_PROXY_V1_TOO_LONG', decidedAt: 107 },
  { name: 'CR as byte 107 (its LF would be byte 108)', input: `PROXY UNKNOWN ${'x'.repeat(92)}\r\n`, code: 'ERR_PROXY_V1_TOO_LONG', decidedAt: 107 },
  // separators and fields
  { name: 'two spaces between addresses', input: 'PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n', code: 'ERR_PROXY_V1_BAD_SYNTAX', decidedAt: 20 },
  { name: 'tab as separator', input: 'PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS', decidedAt: 19 },
  { name: 'missing destination port', input: 'PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n', code: 'ERR_PROXY_V1_BAD_SYNTAX' },
  { name: 'missing addresses', input: 'PROXY TCP4 1.2.3.4\r\n', code: 'ERR_PROXY_V1_BAD_SYNTAX' },
  { name: 'extra field', input: 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n', code: 'ERR_PROXY_V1_BAD_SYNTAX', decidedAt: 31 },
  { name: 'trailing space before CRLF', input: 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n', code: 'ERR_PROXY_V1_BAD_SYNTAX' },
  { name: 'line ends with a bare LF', input: 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n', code: 'ERR_PROXY_V1_BAD_SYNTAX' },
  { name: 'line ends with CR then not LF', input: 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rGET', code: 'ERR_PROXY_V1_BAD_SYNTAX', decidedAt: 32 },
  { name: 'line ends with CR CR LF', input: 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n', code: 'ERR_PROXY_V1_BAD_SYNTAX' },
  // IPv4
  { name: 'IPv4 leading zero', input: 'PROXY TCP4 192.168.01.1 5.6.7.8 1 2\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS', decidedAt: 21 },
  { name: 'IPv4 octal-looking 010', input: 'PROXY TCP4 010.0.0.1 5.6.7.8 1 2\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS', decidedAt: 13 },
  { name: 'IPv4 octet 256', input: 'PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS', decidedAt: 20 },
  { name: 'IPv4 three octets', input: 'PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS' },
  { name: 'IPv4 five octets', input: 'PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS', decidedAt: 19 },
  { name: 'IPv4 empty octet', input: 'PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS', decidedAt: 14 },
  { name: 'IPv4 trailing dot', input: 'PROXY TCP4 1.2.3.4. 5.6.7.8 1 2\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS' },
  { name: 'IPv4 as one integer', input: 'PROXY TCP4 16909060 5.6.7.8 1 2\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS', decidedAt: 15 },
  { name: 'IPv4 hex octet', input: 'PROXY TCP4 0x1.2.3.4 5.6.7.8 1 2\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS', decidedAt: 13 },
  { name: 'bad destination address', input: 'PROXY TCP4 1.2.3.4 5.6.7 1 2\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS' },
  // IPv6
  { name: 'IPv6 zone id', input: 'PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS', decidedAt: 19 },
  { name: 'IPv6 in brackets', input: 'PROXY TCP6 [::1] ::1 1 2\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS', decidedAt: 12 },
  { name: 'IPv6 ":::"', input: 'PROXY TCP6 :::1 ::1 1 2\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS', decidedAt: 14 },
  { name: 'IPv6 two "::"', input: 'PROXY TCP6 1::2::3 ::1 1 2\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS', decidedAt: 17 },
  { name: 'IPv6 single leading colon', input: 'PROXY TCP6 :1 ::1 1 2\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS', decidedAt: 13 },
  { name: 'IPv6 nine groups', input: 'PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS', decidedAt: 27 },
  { name: 'IPv6 seven groups', input: 'PROXY TCP6 1:2:3:4:5:6:7 ::1 1 2\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS' },
  { name: 'IPv6 "::" plus eight groups', input: 'PROXY TCP6 1:2:3:4:5:6:7::8 ::1 1 2\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS', decidedAt: 27 },
  { name: 'IPv6 five hex digits', input: 'PROXY TCP6 12345:: ::1 1 2\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS', decidedAt: 16 },
  { name: 'IPv6 non-hex digit', input: 'PROXY TCP6 g::1 ::1 1 2\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS', decidedAt: 12 },
  { name: 'IPv6 short dotted tail', input: 'PROXY TCP6 ::ffff:1.2.3 ::1 1 2\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS' },
  { name: 'IPv6 dotted tail too late', input: 'PROXY TCP6 1:2:3:4:5:6:7:1.2.3.4 ::1 1 2\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS', decidedAt: 27 },
  { name: 'IPv6 dotted tail too early', input: 'PROXY TCP6 1:2:3:4:5:1.2.3.4 ::1 1 2\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS', decidedAt: 23 },
  { name: 'IPv6 "::" leaves no room for a dotted tail', input: 'PROXY TCP6 ::1:2:3:4:5:6:1.2.3.4 ::1 1 2\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS', decidedAt: 27 },
  { name: 'IPv6 hex before a dot', input: 'PROXY TCP6 ::ffff:a.2.3.4 ::1 1 2\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS', decidedAt: 20 },
  { name: 'IPv6 dotted tail with a leading zero', input: 'PROXY TCP6 ::ffff:1.02.3.4 ::1 1 2\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS', decidedAt: 22 },
  { name: 'IPv6 trailing colon', input: 'PROXY TCP6 1:2:3:4:5:6:7:8: ::1 1 2\r\n', code: 'ERR_PROXY_V1_BAD_ADDRESS', decidedAt: 27 },
  {
    name: 'TCP6 with 45-character dotted forms is longer than 107 bytes',
    input: 'PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 65535 65535\r\n',
    code: 'ERR_PROXY_V1_TOO_LONG',
    decidedAt: 107,
  },
  // ports
  { name: 'port with leading zero', input: 'PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n', code: 'ERR_PROXY_V1_BAD_PORT', decidedAt: 29 },
  { name: 'port "00"', input: 'PROXY TCP4 1.2.3.4 5.6.7.8 1 00\r\n', code: 'ERR_PROXY_V1_BAD_PORT', decidedAt: 31 },
  { name: 'port with plus sign', input: 'PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n', code: 'ERR_PROXY_V1_BAD_PORT', decidedAt: 28 },
  { name: 'negative port', input: 'PROXY TCP4 1.2.3.4 5.6.7.8 1 -2\r\n', code: 'ERR_PROXY_V1_BAD_PORT', decidedAt: 30 },
  { name: 'port 99999', input: 'PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n', code: 'ERR_PROXY_V1_BAD_PORT', decidedAt: 32 },
  { name: 'hex port', input: 'PROXY TCP4 1.2.3.4 5.6.7.8 0x50 2\r\n', code: 'ERR_PROXY_V1_BAD_PORT', decidedAt: 29 },
  // the caller gives parseProxyV1 only bytes starting with "PROXY "
  { name: 'not PROXY at all', input: 'GET / HTTP/1.1\r\n', code: 'ERR_PROXY_V1_BAD_SYNTAX', decidedAt: 1 },
  { name: 'PROXY without its space (go: "PROXY\\r\\n")', input: 'PROXY\r\n', code: 'ERR_PROXY_V1_BAD_SYNTAX', decidedAt: 6 },
];

t.test('invalid lines give their exact code, however they are split', async (t) => {
  for (const row of invalid) {
    t.test(row.name, async (t) => {
      const input = Buffer.from(row.input, 'latin1');
      t.same(allWays(t, input), { kind: 'error', code: row.code });
      if (row.decidedAt !== undefined) {
        t.equal(feedAllWays(input, parseProxyV1)[1]!.decidedAt, row.decidedAt, 'rejected at the first impossible byte');
      }
    });
  }
});

t.test('incomplete lines need more', async (t) => {
  for (const input of ['', 'P', 'PROXY ', 'PROXY T', 'PROXY TCP4', 'PROXY TCP4 ', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2',
    'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r', 'PROXY UNKNOWN', 'PROXY UNKNOWN\r', 'PROXY UNKNOWN 1.2.3.4', 'PROXY TCP6 ::ffff:1.2.3']) {
    t.same(parseProxyV1(Buffer.from(input, 'latin1')), { kind: 'need-more' }, JSON.stringify(input));
  }
});

t.test('address classifiers', async (t) => {
  const classify = (fn: typeof classifyIPv4, text: string): Viability => fn(Buffer.from(text, 'latin1'), 0, text.length);
  const table: Array<[typeof classifyIPv4, string, Viability]> = [
    [classifyIPv4, '', 'prefix'], [classifyIPv4, '0', 'prefix'], [classifyIPv4, '1.2.3.4', 'complete'],
    [classifyIPv4, '1.2.3.', 'prefix'], [classifyIPv4, '00', 'invalid'], [classifyIPv4, '1.2.3.4.', 'invalid'],
    [classifyIPv6, '', 'prefix'], [classifyIPv6, ':', 'prefix'], [classifyIPv6, '::', 'complete'],
    [classifyIPv6, '1:', 'prefix'], [classifyIPv6, '1::', 'complete'], [classifyIPv6, '1:2:3:4:5:6:7:8', 'complete'],
    [classifyIPv6, '1:2:3:4:5:6:7', 'prefix'], [classifyIPv6, '::ffff:1.2', 'prefix'], [classifyIPv6, '::1:2:3:4:5:6:7', 'complete'],
    [classifyIPv6, '::1:2:3:4:5:6:7:', 'invalid'], [classifyIPv6, '1:2:3:4:5:6:7::', 'complete'], [classifyIPv6, '::.', 'invalid'],
  ];
  for (const [fn, text, expected] of table) t.equal(classify(fn, text), expected, `${fn.name}(${JSON.stringify(text)})`);
  t.notOk(isIPv4Text('1.2.3.\u0134'), 'a non-ASCII character does not truncate into a digit');
  t.notOk(isIPv6Text('::\u0131'));
});

// Short strings over the characters addresses are made of, plus a few others.
const addressish = fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF:.:.:x% '.split('')), maxLength: 46 });

t.test('property: the classifiers agree with node:net for complete addresses', async (t) => {
  fc.assert(
    fc.property(fc.oneof(addressish, fc.ipV4(), fc.ipV6()), (text) => {
      t.equal(isIPv4Text(text), isIPv4(text), `IPv4 ${text}`);
      // node:net also accepts a zone id ("%eth0"), which a PROXY line cannot carry.
      t.equal(isIPv6Text(text), isIPv6(text) && !text.includes('%'), `IPv6 ${text}`);
    }),
    { numRuns: 3000 },
  );
  t.end();
});

t.test('property: every prefix of a valid address is a prefix; invalid stays invalid', async (t) => {
  fc.assert(
    fc.property(fc.oneof(fc.ipV6(), fc.ipV4()), (text) => {
      const fn = text.includes(':') ? classifyIPv6 : classifyIPv4;
      const bytes = Buffer.from(text, 'latin1');
      for (let n = 0; n <= bytes.length; n++) {
        if (fn(bytes, 0, n) === 'invalid') return false;
      }
      return fn(bytes, 0, bytes.length) === 'complete';
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(addressish, addressish, (head, tail) => {
      const bytes = Buffer.from(head + tail, 'latin1');
      for (const fn of [classifyIPv4, classifyIPv6]) {
        if (fn(bytes, 0, head.length) === 'invalid' && fn(bytes, 0, bytes.length) !== 'invalid') return false;
      }
      return true;
    }),
    { numRuns: 3000 },
  );
  t.end();
});

t.test('property: random bytes after "PROXY " never throw, and a decision is never revised', async (t) => {
  const codes = Object.keys(ERROR_CODES);
  const tail = fc.oneof(
    fc.uint8Array({ maxLength: 140 }),
    fc.string({ unit: fc.constantFrom(...'TCP46UNKOW 0123456789abcdef:.\r\n'.split('')), maxLength: 120 }).map((s) => Buffer.from(s, 'latin1')),
  );
  fc.assert(
    fc.property(tail, fc.nat(), (bytes, cutSeed) => {
      const input = Buffer.concat([Buffer.from('PROXY ', 'latin1'), bytes]);
      const result = parseProxyV1(input);
      if (result.kind === 'done') {
        if (result.consumed > PROXY_V1_MAX_BYTES || result.consumed > input.length) return false;
      } else if (result.kind === 'error') {
        if (!codes.includes(result.code)) return false;
      } else if (input.length >= PROXY_V1_MAX_BYTES) {
        return false; // 107 bytes always decide
      }
      const prefix = parseProxyV1(input.subarray(0, cutSeed % (input.length + 1)));
      if (prefix.kind !== 'need-more') t.same(result, prefix);
      return true;
    }),
    { numRuns: 5000 },
  );
  t.end();
});

const v1Header = fc.oneof(
  fc.record({ family: fc.constant('TCP4' as const), src: fc.ipV4(), dst: fc.ipV4(), sport: fc.integer({ min: 0, max: 65535 }), dport: fc.integer({ min: 0, max: 65535 }) }),
  fc.record({ family: fc.constant('TCP6' as const), src: fc.ipV6(), dst: fc.ipV6(), sport: fc.integer({ min: 0, max: 65535 }), dport: fc.integer({ min: 0, max: 65535 }) }),
).filter((h) => 22 + h.src.length + h.dst.length + String(h.sport).length + String(h.dport).length <= PROXY_V1_MAX_BYTES);

t.test('property: encode -> parse round-trips, and every proper prefix needs more', async (t) => {
  fc.assert(
    fc.property(v1Header, fc.uint8Array({ maxLength: 20 }), (h, appData) => {
      const header = tcp(h.family, h.src, h.dst, h.sport, h.dport);
      const line = encodeProxyV1(header);
      const result = parseProxyV1(Buffer.concat([line, appData]));
      t.same(result, { kind: 'done', value: header, consumed: line.length });
      for (let n = 0; n < line.length; n++) {
        if (parseProxyV1(line.subarray(0, n)).kind !== 'need-more') return false;
      }
      return true;
    }),
    { numRuns: 1000 },
  );
  t.end();
});

t.test('encodeProxyV1', async (t) => {
  t.equal(encodeProxyV1({ family: 'UNKNOWN' }).toString('latin1'), 'PROXY UNKNOWN\r\n');
  t.equal(
    encodeProxyV1(tcp('TCP4', '198.51.100.22', '203.0.113.7', 35646, 80)).toString('latin1'),
    'PROXY TCP4 198.51.100.22 203.0.113.7 35646 80\r\n',
  );
  const src = { address: '1.2.3.4', port: 1 };
  t.throws(() => encodeProxyV1({ family: 'UNIX', source: src, destination: src }), TypeError);
  t.throws(() => encodeProxyV1({ family: 'TCP4', source: src }), TypeError);
  t.throws(() => encodeProxyV1({ family: 'TCP6', source: src, destination: src }), TypeError);
  t.throws(() => encodeProxyV1({ family: 'TCP4', source: { address: '1.2.3.4', port: 65536 }, destination: src }), RangeError);
  t.throws(() => encodeProxyV1({ family: 'TCP4', source: { address: '1.2.3.4', port: 1.5 }, destination: src }), RangeError);
  const long = { address: 'ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255', port: 65535 };
  t.throws(() => encodeProxyV1({ family: 'TCP6', source: long, destination: long }), RangeError);
});
