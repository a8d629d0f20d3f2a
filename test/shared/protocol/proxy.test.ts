import t, { type Test } from 'tap';
import fc from 'fast-check';
import {
  ABSENT,
  encodeProxyV1,
  encodeProxyV2,
  parseProxyHeader,
  PROXY_V1_MAX_BYTES,
  PROXY_V2_MAX_BYTES,
  PROXY_V2_SIGNATURE,
  type ProxyParseResult,
} from '../../../src/shared/protocol/proxy.js';
import * as proxy from '../../../src/shared/protocol/proxy.js';
import * as v1 from '../../../src/shared/protocol/proxy-v1.js';
import * as v2 from '../../../src/shared/protocol/proxy-v2.js';
import { ERROR_CODES } from '../../../src/shared/errors.js';
import { feedAllWays } from '../../helpers/split.js';

const sameAllWays = (t: Test, input: Buffer): ProxyParseResult => {
  const outcomes = feedAllWays(input, (bytes) => parseProxyHeader(bytes));
  const whole = outcomes[0]!;
  for (const outcome of outcomes) t.same(outcome.result, whole.result, `${outcome.way} agrees`);
  return whole.result;
};

const absent: Array<{ name: string; input: Buffer; decidedAt: number }> = [
  { name: 'HTTP GET', input: Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n'), decidedAt: 1 },
  { name: 'HTTP POST ("P" then "O")', input: Buffer.from('POST / HTTP/1.1\r\n\r\n'), decidedAt: 2 },
  { name: 'HTTP PUT', input: Buffer.from('PUT / HTTP/1.1\r\n\r\n'), decidedAt: 2 },
  { name: 'HTTP PATCH', input: Buffer.from('PATCH / HTTP/1.1\r\n\r\n'), decidedAt: 2 },
  { name: 'HTTP/2 preface', input: Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), decidedAt: 3 },
  { name: 'PROXYX (no space)', input: Buffer.from('PROXYX'), decidedAt: 6 },
  { name: 'lower-case proxy', input: Buffer.from('proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n'), decidedAt: 1 },
  { name: 'TLS ClientHello', input: Buffer.from('160301020001', 'hex'), decidedAt: 1 },
  { name: 'empty line then GET', input: Buffer.from('\r\nGET / HTTP/1.1\r\n'), decidedAt: 3 },
  { name: 'CRLF CRLF then data', input: Buffer.from('\r\n\r\nhello'), decidedAt: 5 },
  { name: 'v2 signature wrong in its 12th byte', input: Buffer.concat([PROXY_V2_SIGNATURE.subarray(0, 11), Buffer.from('0b2111', 'hex')]), decidedAt: 12 },
  { name: 'NUL byte', input: Buffer.from([0]), decidedAt: 1 },
];

t.test('proxy.ts re-exports the v1 and v2 API', async (t) => {
  for (const name of ['PROXY_V1_MAX_BYTES', 'PROXY_V1_PREFIX', 'parseProxyV1', 'encodeProxyV1'] as const) t.equal(proxy[name], v1[name], name);
  for (const name of ['PROXY_V2_SIGNATURE', 'PROXY_V2_FIXED_BYTES', 'PROXY_V2_MAX_BYTES', 'parseProxyV2', 'encodeProxyV2'] as const) t.equal(proxy[name], v2[name], name);
});

t.test('absent: decided at the first byte that differs from both signatures', async (t) => {
  for (const row of absent) {
    t.test(row.name, async (t) => {
      t.same(sameAllWays(t, row.input), ABSENT);
      t.equal(feedAllWays(row.input, (bytes) => parseProxyHeader(bytes))[1]!.decidedAt, row.decidedAt);
    });
  }
});

t.test('need-more for an empty buffer and for prefixes of either signature', async (t) => {
  for (const input of [Buffer.alloc(0), Buffer.from('P'), Buffer.from('PROXY'), Buffer.from('PROXY '), Buffer.from('\r'),
    PROXY_V2_SIGNATURE.subarray(0, 11), PROXY_V2_SIGNATURE]) {
    t.same(parseProxyHeader(input), { kind: 'need-more' });
  }
});

t.test('dispatches to v1 and v2, errors only once the signature is whole', async (t) => {
  const v1 = Buffer.from('PROXY TCP4 198.51.100.22 203.0.113.7 35646 80\r\nGET / HTTP/1.1\r\n\r\n');
  const r1 = sameAllWays(t, v1);
  t.same(r1, {
    kind: 'done',
    consumed: 47,
    value: {
      version: 1, command: 'PROXY', family: 'TCP4', transport: 'STREAM',
      source: { address: '198.51.100.22', port: 35646 }, destination: { address: '203.0.113.7', port: 80 }, tlvs: {},
    },
  });
  t.equal(v1.subarray(47).toString(), 'GET / HTTP/1.1\r\n\r\n', 'the application data starts at consumed');

  const v2 = encodeProxyV2({ family: 'TCP6', source: { address: '2001:db8::7', port: 1 }, destination: { address: '::1', port: 2 }, tlvs: { authority: 'a.example' } });
  const r2 = sameAllWays(t, Buffer.concat([v2, Buffer.from('PROXY UNKNOWN\r\n')]));
  t.equal(r2.kind, 'done');
  if (r2.kind === 'done') {
    t.equal(r2.consumed, v2.length, 'a PROXY line after the header is application data');
    t.equal(r2.value.version, 2);
  }

  t.same(sameAllWays(t, Buffer.from('PROXY TCP7\r\n')), { kind: 'error', code: 'ERR_PROXY_V1_BAD_SYNTAX' });
  t.same(sameAllWays(t, Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x11])])), { kind: 'error', code: 'ERR_PROXY_V2_BAD_VERSION' });
  const big = encodeProxyV2({ family: 'UNKNOWN', tlvs: { other: [{ type: 0xe0, value: Buffer.alloc(200) }] } });
  t.same(parseProxyHeader(big, { maxBytes: 64 }), { kind: 'error', code: 'ERR_PROXY_V2_TOO_LONG' }, 'maxBytes is passed to v2');
  t.equal(parseProxyHeader(big).kind, 'done');
});

t.test('property: random bytes never throw and stay within bounds; decisions are final', async (t) => {
  const codes = Object.keys(ERROR_CODES);
  const start = fc.constantFrom(Buffer.alloc(0), Buffer.from('PROXY '), PROXY_V2_SIGNATURE, Buffer.from('P'), Buffer.from('\r\n'));
  fc.assert(
    fc.property(start, fc.uint8Array({ maxLength: 200 }), fc.nat(), (head, tail, cutSeed) => {
      const input = Buffer.concat([head, tail]);
      const result = parseProxyHeader(input);
      switch (result.kind) {
        case 'done':
          if (result.consumed < 15 || result.consumed > input.length) return false;
          if (result.consumed > Math.max(PROXY_V1_MAX_BYTES, PROXY_V2_MAX_BYTES)) return false;
          break;
        case 'error':
          if (!codes.includes(result.code)) return false;
          break;
        case 'absent':
        case 'need-more':
          break;
        default:
          return false;
      }
      const prefix = parseProxyHeader(input.subarray(0, cutSeed % (input.length + 1)));
      if (prefix.kind !== 'need-more') t.same(result, prefix);
      return true;
    }),
    { numRuns: 5000 },
  );
  t.end();
});

t.test('property: every proper prefix of a valid header needs more', async (t) => {
  const header = fc.oneof(
    fc.tuple(fc.ipV4(), fc.ipV4(), fc.integer({ min: 0, max: 65535 })).map(([s, d, p]) =>
      encodeProxyV1({ family: 'TCP4', source: { address: s, port: p }, destination: { address: d, port: 65535 - p } })),
    fc.tuple(fc.ipV4(), fc.ipV4(), fc.string({ maxLength: 20 })).map(([s, d, alpn]) =>
      encodeProxyV2({ family: 'TCP4', source: { address: s, port: 1 }, destination: { address: d, port: 2 }, tlvs: { alpn, crc32c: 0 } })),
  );
  fc.assert(
    fc.property(header, fc.nat(), (bytes, cutSeed) => {
      const n = cutSeed % bytes.length;
      return parseProxyHeader(bytes.subarray(0, n)).kind === 'need-more' && parseProxyHeader(bytes).kind === 'done';
    }),
    { numRuns: 3000 },
  );
  t.end();
});
