/**
 * Times parseProxyHeader on the two headers a balancer sees in production: a
 * Classic ELB v1 TCP4 line and an NLB-style v2 header with TLVs (CRC32C, VPC
 * endpoint id, ALPN, authority, unique id). A bounded number of iterations,
 * printing ns/op; no assertions.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/proxy-parse.js [iterations]
 */
import { encodeProxyV2, parseProxyHeader } from '../src/shared/protocol/proxy.js';

const iterations = Math.max(1, Number(process.argv[2] ?? 1_000_000) | 0);

const cases: Array<{ name: string; bytes: Buffer }> = [
  { name: 'v1 TCP4', bytes: Buffer.from('PROXY TCP4 198.51.100.22 203.0.113.7 35646 80\r\nGET / HTTP/1.1\r\n\r\n', 'latin1') },
  {
    name: 'v1 TCP6',
    bytes: Buffer.from('PROXY TCP6 2001:db8:85a3::8a2e:370:7334 2001:db8::1 35646 443\r\nGET / HTTP/1.1\r\n\r\n', 'latin1'),
  },
  {
    name: 'v2 TCP4 + TLVs',
    bytes: encodeProxyV2({
      family: 'TCP4',
      source: { address: '172.31.7.113', port: 51442 },
      destination: { address: '172.31.10.31', port: 80 },
      tlvs: { crc32c: 0, awsVpceId: 'vpce-08d2bf15fac5001c9', alpn: 'h2', authority: 'www.example.com', uniqueId: Buffer.alloc(16, 1) },
    }),
  },
];

for (const { name, bytes } of cases) {
  const first = parseProxyHeader(bytes);
  if (first.kind !== 'done') throw new Error(`${name}: fixture does not parse (${first.kind})`);
  // Warm up so the timed loop measures optimized code.
  for (let i = 0; i < Math.min(iterations, 50_000); i++) parseProxyHeader(bytes);
  let consumed = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    const result = parseProxyHeader(bytes);
    if (result.kind === 'done') consumed += result.consumed;
  }
  const elapsed = Number(process.hrtime.bigint() - start);
  console.log(`${name.padEnd(16)} ${bytes.length.toString().padStart(4)} B  ${(elapsed / iterations).toFixed(1).padStart(8)} ns/op  (${iterations} iterations, ${consumed} bytes parsed)`);
}
