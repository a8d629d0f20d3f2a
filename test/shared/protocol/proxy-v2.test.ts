import t, { type Test } from 'tap';
import fc from 'fast-check';
import { SocketAddress } from 'node:net';
import {
  encodeProxyV2,
  formatIPv6,
  parseProxyV2,
  PROXY_V2_MAX_BYTES,
  PROXY_V2_SIGNATURE,
  type ProxyV2Input,
} from '../../../src/shared/protocol/proxy-v2.js';
import type { ProxyHeader, ProxyTlvs } from '../../../src/shared/protocol/proxy.js';
import type { ParseResult } from '../../../src/shared/protocol/result.js';
import { crc32c } from '../../../src/shared/protocol/crc32c.js';
import { ERROR_CODES, type ErrorCode } from '../../../src/shared/errors.js';
import { feedAllWays } from '../../helpers/split.js';

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');
/** Signature + ver_cmd + fam + the u16 length of `body` + body. */
function v2(verCmd: number, fam: number, body: Buffer, length = body.length): Buffer {
  return Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([verCmd, fam, length >> 8, length & 0xff]), body]);
}
const tlv = (type: number, value: Buffer | string): Buffer => {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
  return Buffer.concat([Buffer.from([type, bytes.length >> 8, bytes.length & 0xff]), bytes]);
};
const IPV4_BLOCK = hex('7f000001 7f000001 1f90 0050'); // 127.0.0.1:8080 -> 127.0.0.1:80
const IPV6_BLOCK = hex('20010db8000000000000000000000001 fe800000000000000000000000000001 c350 01bb');
const unixPath = (path: string): Buffer => {
  const bytes = Buffer.alloc(108);
  bytes.write(path, 'latin1');
  return bytes;
};

function allWays(t: Test, input: Buffer): ParseResult<ProxyHeader> {
  const outcomes = feedAllWays(input, (bytes) => parseProxyV2(bytes));
  const whole = outcomes[0]!;
  for (const outcome of outcomes) t.same(outcome.result, whole.result, `${outcome.way} agrees`);
  return whole.result;
}

const header = (fields: Partial<ProxyHeader>): ProxyHeader => ({
  version: 2, command: 'PROXY', family: 'TCP4', transport: 'STREAM', source: null, destination: null, tlvs: {}, ...fields,
});
const v4 = { source: { address: '127.0.0.1', port: 8080 }, destination: { address: '127.0.0.1', port: 80 } };
const v6 = { source: { address: '2001:db8::1', port: 50000 }, destination: { address: 'fe80::1', port: 443 } };

// AWS NLB capture with CRC32C, the VPC endpoint id and NOOP padding, from
// aws/elastic-load-balancing-tools (Compatibility_AwsNetworkLoadBalancerTest.java).
const NLB = hex(`0d0a0d0a000d0a515549540a 2111 0054 ac1f0771 ac1f0a1f c8f2 0050
  030004 e8d6892d ea0017 01 7670 63652d30 38643262 66313566 61633530 30316339 040024 ${'00'.repeat(36)}`);

const valid: Array<{ name: string; input: Buffer; header: ProxyHeader; consumed?: number }> = [
  {
    name: 'AWS NLB: PROXY TCP4 with CRC32C, VPCE id and NOOP',
    input: Buffer.concat([NLB, Buffer.from('GET / HTTP/1.1\r\n')]),
    header: header({
      source: { address: '172.31.7.113', port: 51442 },
      destination: { address: '172.31.10.31', port: 80 },
      tlvs: { crc32c: 0xe8d6892d, awsVpceId: 'vpce-08d2bf15fac5001c9' },
    }),
    consumed: 100,
  },
  { name: 'LOCAL UNSPEC, length 0 (health check)', input: v2(0x20, 0x00, Buffer.alloc(0)), header: header({ command: 'LOCAL', family: 'UNKNOWN', transport: 'UNSPEC' }) },
  { name: 'go: LOCAL TCP4 with addresses (ignored)', input: v2(0x20, 0x11, IPV4_BLOCK), header: header({ command: 'LOCAL' }) },
  {
    name: 'LOCAL skips the whole block: garbage TLVs and a wrong CRC are not looked at',
    input: v2(0x20, 0x11, Buffer.concat([IPV4_BLOCK, tlv(0x03, hex('00000000')), hex('ff')])),
    header: header({ command: 'LOCAL' }),
  },
  { name: 'LOCAL TCP6 shorter than its address block', input: v2(0x20, 0x21, hex('0102')), header: header({ command: 'LOCAL', family: 'TCP6' }) },
  { name: 'PROXY TCP4', input: v2(0x21, 0x11, IPV4_BLOCK), header: header(v4) },
  { name: 'PROXY UDP4', input: v2(0x21, 0x12, IPV4_BLOCK), header: header({ ...v4, transport: 'DGRAM' }) },
  { name: 'PROXY TCP6', input: v2(0x21, 0x21, IPV6_BLOCK), header: header({ ...v6, family: 'TCP6' }) },
  { name: 'PROXY UDP6', input: v2(0x21, 0x22, IPV6_BLOCK), header: header({ ...v6, family: 'TCP6', transport: 'DGRAM' }) },
  {
    name: 'PROXY TCP6 IPv4-mapped formats like Node',
    input: v2(0x21, 0x21, hex('00000000000000000000ffffc0000201 00000000000000000000000000000001 0001 0002')),
    header: header({ family: 'TCP6', source: { address: '::ffff:192.0.2.1', port: 1 }, destination: { address: '::1', port: 2 } }),
  },
  {
    name: 'PROXY UNIX stream',
    input: v2(0x21, 0x31, Buffer.concat([unixPath('/tmp/client.sock'), unixPath('/run/app.sock')])),
    header: header({ family: 'UNIX', source: { address: '/tmp/client.sock', port: 0 }, destination: { address: '/run/app.sock', port: 0 } }),
  },
  {
    name: 'PROXY UNIX dgram, full 108-byte path and an abstract socket',
    input: v2(0x21, 0x32, Buffer.concat([Buffer.alloc(108, 0x61), unixPath('\0abstract')])),
    header: header({ family: 'UNIX', transport: 'DGRAM', source: { address: 'a'.repeat(108), port: 0 }, destination: { address: '\0abstract', port: 0 } }),
  },
  {
    name: 'PROXY UNIX with empty paths',
    input: v2(0x21, 0x31, Buffer.alloc(216)),
    header: header({ family: 'UNIX', source: { address: '', port: 0 }, destination: { address: '', port: 0 } }),
  },
  {
    name: 'PROXY UNSPEC with TLVs',
    input: v2(0x21, 0x00, tlv(0x02, 'example.com')),
    header: header({ family: 'UNKNOWN', transport: 'UNSPEC', tlvs: { authority: 'example.com' } }),
  },
  {
    name: 'PROXY INET with transport UNSPEC: address block skipped',
    input: v2(0x21, 0x10, Buffer.concat([IPV4_BLOCK, tlv(0x01, 'h2')])),
    header: header({ transport: 'UNSPEC', tlvs: { alpn: 'h2' } }),
  },
  {
    name: 'go: TCP4 padded with zero bytes (24 empty type-0 TLVs)',
    input: Buffer.concat([v2(0x21, 0x11, Buffer.concat([IPV4_BLOCK, Buffer.alloc(72)])), hex('999798')]),
    header: header({ ...v4, tlvs: { other: Array.from({ length: 24 }, () => ({ type: 0, value: Buffer.alloc(0) })) } }),
  },
  {
    name: 'every TLV type',
    input: v2(0x21, 0x11, Buffer.concat([
      IPV4_BLOCK,
      tlv(0x01, 'http/1.1'),
      tlv(0x02, 'www.example.com'),
      tlv(0x04, ''),
      tlv(0x05, Buffer.alloc(128, 7)),
      tlv(0x20, Buffer.concat([hex('07 00000000'), tlv(0x21, 'TLSv1.3'), tlv(0x22, 'client.example'), tlv(0x23, 'TLS_AES_128_GCM_SHA256'),
        tlv(0x24, 'RSA-SHA256'), tlv(0x25, 'RSA2048'), tlv(0x26, 'ignored')])),
      tlv(0x30, 'blue'),
      tlv(0xe0, hex('0102')),
      tlv(0xea, hex('02 aabb')), // an AWS subtype other than VPCE id: kept raw
      tlv(0xea, ''),
      tlv(0xe0, ''),
    ])),
    header: header({
      ...v4,
      tlvs: {
        alpn: 'http/1.1', authority: 'www.example.com', uniqueId: Buffer.alloc(128, 7), netns: 'blue',
        ssl: { client: 7, verify: 0, version: 'TLSv1.3', cn: 'client.example', cipher: 'TLS_AES_128_GCM_SHA256', sigAlg: 'RSA-SHA256', keyAlg: 'RSA2048' },
        other: [{ type: 0xe0, value: hex('0102') }, { type: 0xea, value: hex('02aabb') }, { type: 0xea, value: Buffer.alloc(0) }, { type: 0xe0, value: Buffer.alloc(0) }],
      },
    }),
  },
  {
    name: 'SSL without sub-TLVs, non-zero verify',
    input: v2(0x21, 0x11, Buffer.concat([IPV4_BLOCK, tlv(0x20, hex('00 00000001'))])),
    header: header({ ...v4, tlvs: { ssl: { client: 0, verify: 1 } } }),
  },
  {
    name: 'only the first header counts: a second v2 header is application data',
    input: Buffer.concat([v2(0x20, 0x00, Buffer.alloc(0)), v2(0x21, 0x11, IPV4_BLOCK)]),
    header: header({ command: 'LOCAL', family: 'UNKNOWN', transport: 'UNSPEC' }),
    consumed: 16,
  },
];

t.test('valid headers, fed whole, byte by byte and split at every offset', async (t) => {
  for (const row of valid) {
    t.test(row.name, async (t) => {
      const consumed = row.consumed ?? (row.input.readUInt16BE(14) + 16);
      t.same(allWays(t, row.input), { kind: 'done', value: row.header, consumed });
      const byteByByte = feedAllWays(row.input, (bytes) => parseProxyV2(bytes))[1]!;
      t.equal(byteByByte.decidedAt, consumed, 'nothing decided before the last header byte');
    });
  }
});

const withCrc = (body: Buffer[]): Buffer => {
  const header = v2(0x21, 0x11, Buffer.concat(body));
  const at = header.indexOf(hex('030004')) + 3;
  header.writeUInt32BE(crc32c(header), at);
  return header;
};

const invalid: Array<{ name: string; input: Buffer; code: ErrorCode; decidedAt?: number }> = [
  { name: 'not the signature', input: Buffer.from('GET / HTTP/1.1\r\n'), code: 'ERR_PROXY_V2_BAD_SIGNATURE', decidedAt: 1 },
  { name: 'go: truncated signature', input: PROXY_V2_SIGNATURE.subarray(2), code: 'ERR_PROXY_V2_BAD_SIGNATURE', decidedAt: 3 },
  { name: 'signature wrong in its last byte', input: Buffer.concat([PROXY_V2_SIGNATURE.subarray(0, 11), hex('0b21')]), code: 'ERR_PROXY_V2_BAD_SIGNATURE', decidedAt: 12 },
  { name: 'go: invalid command byte 0x99 (version 9)', input: v2(0x99, 0x11, IPV4_BLOCK), code: 'ERR_PROXY_V2_BAD_VERSION', decidedAt: 13 },
  { name: 'version 1 in the binary header', input: v2(0x11, 0x11, IPV4_BLOCK), code: 'ERR_PROXY_V2_BAD_VERSION', decidedAt: 13 },
  { name: 'version 0', input: v2(0x01, 0x11, IPV4_BLOCK), code: 'ERR_PROXY_V2_BAD_VERSION', decidedAt: 13 },
  { name: 'version 3', input: v2(0x31, 0x11, IPV4_BLOCK), code: 'ERR_PROXY_V2_BAD_VERSION', decidedAt: 13 },
  { name: 'command 2', input: v2(0x22, 0x11, IPV4_BLOCK), code: 'ERR_PROXY_V2_BAD_COMMAND', decidedAt: 13 },
  { name: 'command 0xf', input: v2(0x2f, 0x11, IPV4_BLOCK), code: 'ERR_PROXY_V2_BAD_COMMAND', decidedAt: 13 },
  { name: 'family 4', input: v2(0x21, 0x41, IPV4_BLOCK), code: 'ERR_PROXY_V2_BAD_FAMILY', decidedAt: 14 },
  { name: 'go: family byte 0x99', input: v2(0x21, 0x99, IPV4_BLOCK), code: 'ERR_PROXY_V2_BAD_FAMILY', decidedAt: 14 },
  { name: 'transport 3', input: v2(0x21, 0x13, IPV4_BLOCK), code: 'ERR_PROXY_V2_BAD_FAMILY', decidedAt: 14 },
  { name: 'LOCAL with an invalid family is still refused', input: v2(0x20, 0xff, Buffer.alloc(0)), code: 'ERR_PROXY_V2_BAD_FAMILY', decidedAt: 14 },
  { name: 'go: TCPv4 length 0', input: v2(0x21, 0x11, Buffer.alloc(0)), code: 'ERR_PROXY_V2_TOO_SHORT', decidedAt: 16 },
  { name: 'go: TCPv4 length 0 but with address and ports', input: v2(0x21, 0x11, IPV4_BLOCK, 0), code: 'ERR_PROXY_V2_TOO_SHORT', decidedAt: 16 },
  { name: 'TCPv4 length 11', input: v2(0x21, 0x11, IPV4_BLOCK.subarray(0, 11)), code: 'ERR_PROXY_V2_TOO_SHORT', decidedAt: 16 },
  { name: 'TCPv6 length 12 (IPv4 block)', input: v2(0x21, 0x21, IPV4_BLOCK), code: 'ERR_PROXY_V2_TOO_SHORT', decidedAt: 16 },
  { name: 'UNIX length 215', input: v2(0x21, 0x31, Buffer.alloc(215)), code: 'ERR_PROXY_V2_TOO_SHORT', decidedAt: 16 },
  { name: 'go: random bytes after the addresses are not TLVs (2 left over)', input: v2(0x21, 0x11, Buffer.concat([IPV4_BLOCK, hex('0000')])), code: 'ERR_PROXY_V2_BAD_TLV' },
  { name: 'one byte after the addresses', input: v2(0x21, 0x11, Buffer.concat([IPV4_BLOCK, hex('01')])), code: 'ERR_PROXY_V2_BAD_TLV' },
  { name: 'TLV overruns the header', input: v2(0x21, 0x11, Buffer.concat([IPV4_BLOCK, hex('010005 6832')])), code: 'ERR_PROXY_V2_BAD_TLV' },
  { name: 'TLV length 0xffff', input: v2(0x21, 0x11, Buffer.concat([IPV4_BLOCK, hex('e0ffff')])), code: 'ERR_PROXY_V2_BAD_TLV' },
  { name: 'CRC32C of 3 bytes', input: v2(0x21, 0x11, Buffer.concat([IPV4_BLOCK, tlv(0x03, hex('000000'))])), code: 'ERR_PROXY_V2_BAD_TLV' },
  { name: 'CRC32C of 5 bytes', input: v2(0x21, 0x11, Buffer.concat([IPV4_BLOCK, tlv(0x03, hex('0000000000'))])), code: 'ERR_PROXY_V2_BAD_TLV' },
  { name: 'CRC32C mismatch', input: v2(0x21, 0x11, Buffer.concat([IPV4_BLOCK, tlv(0x03, hex('12345678'))])), code: 'ERR_PROXY_V2_BAD_CRC' },
  {
    name: 'AWS NLB capture with one address bit flipped',
    input: Buffer.concat([NLB.subarray(0, 16), hex('ad'), NLB.subarray(17)]),
    code: 'ERR_PROXY_V2_BAD_CRC',
  },
  { name: 'two CRC32C TLVs', input: withCrc([IPV4_BLOCK, tlv(0x03, hex('00000000')), tlv(0x03, hex('00000000'))]), code: 'ERR_PROXY_V2_BAD_TLV' },
  { name: 'two ALPN TLVs', input: v2(0x21, 0x11, Buffer.concat([IPV4_BLOCK, tlv(0x01, 'h2'), tlv(0x01, 'h2')])), code: 'ERR_PROXY_V2_BAD_TLV' },
  { name: 'two VPCE ids', input: v2(0x21, 0x11, Buffer.concat([IPV4_BLOCK, tlv(0xea, '\x01a'), tlv(0xea, '\x01b')])), code: 'ERR_PROXY_V2_BAD_TLV' },
  { name: 'UNIQUE_ID of 129 bytes', input: v2(0x21, 0x11, Buffer.concat([IPV4_BLOCK, tlv(0x05, Buffer.alloc(129))])), code: 'ERR_PROXY_V2_BAD_TLV' },
  { name: 'SSL shorter than client + verify', input: v2(0x21, 0x11, Buffer.concat([IPV4_BLOCK, tlv(0x20, hex('01000000'))])), code: 'ERR_PROXY_V2_BAD_TLV' },
  { name: 'SSL sub-TLV overruns the SSL value', input: v2(0x21, 0x11, Buffer.concat([IPV4_BLOCK, tlv(0x20, hex('01 00000000 210009 544c53'))])), code: 'ERR_PROXY_V2_BAD_TLV' },
  { name: 'SSL with 2 stray bytes', input: v2(0x21, 0x11, Buffer.concat([IPV4_BLOCK, tlv(0x20, hex('01 00000000 2100'))])), code: 'ERR_PROXY_V2_BAD_TLV' },
  { name: 'SSL with two version sub-TLVs', input: v2(0x21, 0x11, Buffer.concat([IPV4_BLOCK, tlv(0x20, Buffer.concat([hex('01 00000000'), tlv(0x21, 'a'), tlv(0x21, 'b')]))])), code: 'ERR_PROXY_V2_BAD_TLV' },
];

t.test('invalid headers give their exact code, however they are split', async (t) => {
  for (const row of invalid) {
    t.test(row.name, async (t) => {
      t.same(allWays(t, row.input), { kind: 'error', code: row.code });
      if (row.decidedAt !== undefined) {
        t.equal(feedAllWays(row.input, (bytes) => parseProxyV2(bytes))[1]!.decidedAt, row.decidedAt, 'rejected at the first impossible byte');
      }
    });
  }
});

t.test('maxBytes', async (t) => {
  const big = v2(0x21, 0x11, Buffer.concat([IPV4_BLOCK, tlv(0xe0, Buffer.alloc(100))]));
  t.same(parseProxyV2(big.subarray(0, 16), { maxBytes: 128 }), { kind: 'error', code: 'ERR_PROXY_V2_TOO_LONG' }, 'refused from the length field alone');
  t.equal(parseProxyV2(big, { maxBytes: big.length }).kind, 'done');
  t.equal(PROXY_V2_MAX_BYTES, 16 + 65535);
  const largest = v2(0x21, 0x11, Buffer.concat([IPV4_BLOCK, tlv(0xe0, Buffer.alloc(65535 - 12 - 3))]));
  t.equal(largest.length, PROXY_V2_MAX_BYTES);
  t.same(parseProxyV2(largest.subarray(0, largest.length - 1)), { kind: 'need-more' });
  t.equal(parseProxyV2(largest).kind, 'done');
});

t.test('need-more while the header is incomplete', async (t) => {
  for (const input of [Buffer.alloc(0), PROXY_V2_SIGNATURE.subarray(0, 5), PROXY_V2_SIGNATURE, v2(0x21, 0x11, IPV4_BLOCK).subarray(0, 15),
    v2(0x21, 0x21, IPV4_BLOCK, 36) /* go: TCPv6 length with an IPv4 block: waits for 36 bytes */]) {
    t.same(parseProxyV2(input), { kind: 'need-more' });
  }
});

t.test('formatIPv6 matches Node (libuv inet_ntop)', async (t) => {
  const word = fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, fc.constant(0xffff), fc.integer({ min: 0, max: 0xffff }));
  fc.assert(
    fc.property(fc.array(word, { minLength: 8, maxLength: 8 }), (words) => {
      const bytes = Buffer.alloc(16);
      words.forEach((w, k) => bytes.writeUInt16BE(w, 2 * k));
      const long = words.map((w) => w.toString(16)).join(':');
      t.equal(formatIPv6(bytes, 0), new SocketAddress({ address: long, family: 'ipv6' }).address, long);
    }),
    { numRuns: 3000 },
  );
  t.end();
});

t.test('property: random bytes after the signature never throw, stay in bounds, and a decision is never revised', async (t) => {
  const codes = Object.keys(ERROR_CODES);
  const body = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    fc.tuple(fc.constantFrom(0x20, 0x21), fc.constantFrom(0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x10), fc.uint8Array({ maxLength: 300 }))
      .map(([vc, fam, rest]) => Buffer.concat([Buffer.from([vc, fam, rest.length >> 8, rest.length & 0xff]), rest])),
  );
  fc.assert(
    fc.property(body, fc.nat(), (rest, cutSeed) => {
      const input = Buffer.concat([PROXY_V2_SIGNATURE, rest]);
      const result = parseProxyV2(input);
      if (result.kind === 'done' && (result.consumed > input.length || result.consumed > PROXY_V2_MAX_BYTES)) return false;
      if (result.kind === 'error' && !codes.includes(result.code)) return false;
      const prefix = parseProxyV2(input.subarray(0, cutSeed % (input.length + 1)));
      if (prefix.kind !== 'need-more') t.same(result, prefix);
      return true;
    }),
    { numRuns: 5000 },
  );
  t.end();
});

const port = fc.integer({ min: 0, max: 65535 });
const text = fc.string({ maxLength: 30 });
const tlvsArb: fc.Arbitrary<ProxyTlvs> = fc.record(
  {
    alpn: text,
    authority: text,
    crc32c: fc.constant(0),
    uniqueId: fc.uint8Array({ maxLength: 128 }).map((a) => Buffer.from(a)),
    netns: text,
    ssl: fc.record(
      { client: fc.integer({ min: 0, max: 255 }), verify: fc.nat(), version: text, cn: text, cipher: text, sigAlg: text, keyAlg: text },
      { requiredKeys: ['client', 'verify'] },
    ),
    awsVpceId: text,
    other: fc.array(
      fc.record({
        type: fc.integer({ min: 0, max: 255 }).filter((n) => ![0x01, 0x02, 0x03, 0x04, 0x05, 0x20, 0x30, 0xea].includes(n)),
        value: fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
      }),
      { minLength: 1, maxLength: 4 },
    ),
  },
  { requiredKeys: [] },
);
const canonical6 = (address: string): string => new SocketAddress({ address, family: 'ipv6' }).address;
const inputArb: fc.Arbitrary<ProxyV2Input> = fc.oneof(
  fc.record({ family: fc.constant('TCP4' as const), transport: fc.constantFrom('STREAM' as const, 'DGRAM' as const), source: fc.record({ address: fc.ipV4(), port }), destination: fc.record({ address: fc.ipV4(), port }), tlvs: tlvsArb }),
  fc.record({ family: fc.constant('TCP6' as const), transport: fc.constantFrom('STREAM' as const, 'DGRAM' as const), source: fc.record({ address: fc.ipV6(), port }), destination: fc.record({ address: fc.ipV6(), port }), tlvs: tlvsArb }),
  fc.record({
    family: fc.constant('UNIX' as const),
    transport: fc.constantFrom('STREAM' as const, 'DGRAM' as const),
    source: fc.record({ address: fc.string({ unit: fc.constantFrom(...'/abc.sock-_'.split('')), maxLength: 100 }), port: fc.constant(0) }),
    destination: fc.record({ address: fc.string({ unit: fc.constantFrom(...'/xyz.sock'.split('')), maxLength: 108 }), port: fc.constant(0) }),
    tlvs: tlvsArb,
  }),
  fc.record({ family: fc.constant('UNKNOWN' as const), tlvs: tlvsArb }),
);

t.test('property: encode -> parse round-trips with random TLVs; every proper prefix needs more', async (t) => {
  fc.assert(
    fc.property(inputArb, fc.uint8Array({ maxLength: 16 }), (input, appData) => {
      const bytes = encodeProxyV2(input);
      const result = parseProxyV2(Buffer.concat([bytes, appData]));
      if (result.kind !== 'done') return false;
      t.equal(result.consumed, bytes.length);
      const fix = (e: ProxyHeader['source'] | undefined) =>
        e ? { address: input.family === 'TCP6' ? canonical6(e.address) : e.address, port: e.port } : null;
      const tlvs: ProxyTlvs = { ...input.tlvs };
      if (tlvs.crc32c !== undefined) {
        // The encoder writes the real checksum; the parser only reports it when it matched.
        if (typeof result.value.tlvs.crc32c !== 'number') return false;
        tlvs.crc32c = result.value.tlvs.crc32c;
      }
      t.same(result.value, {
        version: 2, command: 'PROXY', family: input.family, transport: input.transport ?? 'UNSPEC',
        source: fix(input.source), destination: fix(input.destination), tlvs,
      });
      t.same(encodeProxyV2(result.value), bytes, 're-encoding gives the same bytes');
      for (let n = 0; n < bytes.length; n += Math.max(1, bytes.length >> 5)) {
        if (parseProxyV2(bytes.subarray(0, n)).kind !== 'need-more') return false;
      }
      return true;
    }),
    { numRuns: 800 },
  );
  t.end();
});

t.test('encodeProxyV2', async (t) => {
  t.same(encodeProxyV2({ command: 'LOCAL', family: 'UNKNOWN' }), v2(0x20, 0x00, Buffer.alloc(0)));
  t.same(encodeProxyV2({ command: 'LOCAL', family: 'TCP4' }), v2(0x20, 0x11, Buffer.alloc(12)), 'zero address block');
  t.same(encodeProxyV2({ family: 'TCP4', transport: 'UNSPEC' }), v2(0x21, 0x10, Buffer.alloc(12)));
  t.same(encodeProxyV2({ family: 'TCP4', ...v4 }), v2(0x21, 0x11, IPV4_BLOCK));
  t.same(encodeProxyV2({ family: 'TCP6', ...v6 }), v2(0x21, 0x21, IPV6_BLOCK));
  const nlb = parseProxyV2(NLB);
  t.equal(nlb.kind, 'done');
  if (nlb.kind === 'done') {
    const again = parseProxyV2(encodeProxyV2(nlb.value));
    // Without the NOOP padding the length, and so the checksum, differ.
    const expected = { ...nlb.value, tlvs: { ...nlb.value.tlvs, crc32c: again.kind === 'done' ? again.value.tlvs.crc32c : -1 } };
    t.same(again, { kind: 'done', value: expected, consumed: 100 - 39 }, 'the NLB header without its NOOP padding');
  }
  const src = { address: '1.2.3.4', port: 1 };
  t.throws(() => encodeProxyV2({ family: 'TCP4', source: src }), TypeError);
  t.throws(() => encodeProxyV2({ family: 'TCP4', source: { address: '::1', port: 1 }, destination: src }), TypeError);
  t.throws(() => encodeProxyV2({ family: 'TCP6', source: src, destination: src }), TypeError);
  t.throws(() => encodeProxyV2({ family: 'TCP4', source: { address: '1.2.3.4', port: -1 }, destination: src }), RangeError);
  t.throws(() => encodeProxyV2({ family: 'UNIX', source: { address: 'x'.repeat(109), port: 0 }, destination: src }), RangeError);
  t.throws(() => encodeProxyV2({ family: 'TCP4', transport: 'RAW' as 'STREAM', ...v4 }), TypeError);
  t.throws(() => encodeProxyV2({ family: 'TCP4', ...v4, tlvs: { uniqueId: Buffer.alloc(129) } }), RangeError);
  t.throws(() => encodeProxyV2({ family: 'TCP4', ...v4, tlvs: { other: [{ type: 0xe0, value: Buffer.alloc(65536) }] } }), RangeError);
  t.throws(() => encodeProxyV2({ family: 'TCP4', ...v4, tlvs: { other: [{ type: 0xe0, value: Buffer.alloc(65535 - 12 - 3 + 1) }] } }), RangeError);
});

t.test('crc32c known answer (RFC 3720 B.4 / "123456789")', async (t) => {
  t.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  t.equal(crc32c(Buffer.alloc(32)), 0x8a9136aa);
  t.equal(crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43);
});
