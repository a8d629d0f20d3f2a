import fc from 'fast-check';
import t from 'tap';
import { decidesWithoutBytes, newPeekState, readPeek, type PeekRules, type PeekStep } from '../../src/master/peek.js';
import { encodeProxyV1 } from '../../src/shared/protocol/proxy-v1.js';
import { encodeProxyV2 } from '../../src/shared/protocol/proxy-v2.js';

const RULES: PeekRules = { peekBytes: 16 * 1024, proxyMode: 'optional', needsHead: true };
const HEAD = Buffer.from('GET /a HTTP/1.1\r\nhost: app.example\r\nx-forwarded-for: 198.51.100.7\r\n\r\n');
const V1 = encodeProxyV1({ family: 'TCP4', source: { address: '203.0.113.9', port: 5000 }, destination: { address: '10.0.0.1', port: 80 } });
const V2 = encodeProxyV2({ command: 'PROXY', family: 'TCP6', transport: 'STREAM', source: { address: '2001:db8::9', port: 5000 }, destination: { address: '2001:db8::1', port: 443 } });

/** Feeds `chunks` until the first step that is not 'wait'; the step, how many bytes it took, and the state. */
function feed(chunks: Buffer[], rules: PeekRules = RULES, peerTrusted = true) {
  const state = newPeekState(peerTrusted, rules);
  let read = 0;
  let step: PeekStep = { kind: 'wait' };
  for (const chunk of chunks) {
    read += chunk.length;
    step = readPeek(state, chunk, rules);
    if (step.kind !== 'wait') break;
  }
  return { step, read, state };
}

/** Every way TCP could deliver `bytes`: whole, byte by byte, split in two at each offset. */
function deliveries(bytes: Buffer): Array<{ way: string; chunks: Buffer[] }> {
  const ways = [{ way: 'whole', chunks: [bytes] }, { way: 'byte-by-byte', chunks: [...bytes].map((byte) => Buffer.of(byte)) }];
  for (let k = 1; k < bytes.length; k++) ways.push({ way: `split@${k}`, chunks: [bytes.subarray(0, k), bytes.subarray(k)] });
  return ways;
}

/** What a decision says, for comparing deliveries. */
function summary(outcome: ReturnType<typeof feed>) {
  const { step, state } = outcome;
  return {
    kind: step.kind,
    code: step.kind === 'refuse' ? step.code : null,
    target: step.kind === 'decide' ? (step.head?.target ?? null) : null,
    forwardedFor: step.kind === 'decide' ? (step.head?.forwardedFor ?? null) : null,
    offset: state.offset,
    source: state.proxy?.source ?? null,
  };
}

const cases = [
  { name: 'a head alone', bytes: HEAD, want: { kind: 'decide', code: null, target: '/a', forwardedFor: ['198.51.100.7'], offset: 0, source: null } },
  { name: 'PROXY v1 then the head', bytes: Buffer.concat([V1, HEAD]), want: { kind: 'decide', code: null, target: '/a', forwardedFor: ['198.51.100.7'], offset: V1.length, source: { address: '203.0.113.9', port: 5000 } } },
  { name: 'PROXY v2 then the head', bytes: Buffer.concat([V2, HEAD]), want: { kind: 'decide', code: null, target: '/a', forwardedFor: ['198.51.100.7'], offset: V2.length, source: { address: '2001:db8::9', port: 5000 } } },
];

for (const { name, bytes, want } of cases) {
  t.test(`${name}: the same decision however the bytes arrive, taken when the head is complete`, async (t) => {
    for (const { way, chunks } of deliveries(bytes)) {
      const outcome = feed(chunks);
      t.same(summary(outcome), want, way);
      t.equal(outcome.read, bytes.length, `${way}: decided at the last byte`);
    }
  });
}

t.test('refusals, each with its code', async (t) => {
  const table: Array<{ name: string; bytes: Buffer; rules?: Partial<PeekRules>; trusted?: boolean; code: string }> = [
    { name: 'a PROXY header from an untrusted peer', bytes: Buffer.concat([V1, HEAD]), trusted: false, code: 'ERR_PROXY_UNTRUSTED' },
    { name: 'a malformed PROXY header from an untrusted peer', bytes: Buffer.from('PROXY TCP4 x\r\n'), trusted: false, code: 'ERR_PROXY_UNTRUSTED' },
    { name: 'a malformed PROXY header from a trusted peer', bytes: Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\n'), code: 'ERR_PROXY_V1_BAD_PORT' },
    { name: 'no header where one is required', bytes: HEAD, rules: { proxyMode: 'required' }, code: 'ERR_PROXY_REQUIRED' },
    { name: 'an unfinished PROXY v1 line past peekBytes', bytes: V1.subarray(0, 20), rules: { peekBytes: 10 }, code: 'ERR_PEEK_LIMIT' },
    { name: 'a PROXY v2 header that says it is longer than peekBytes', bytes: V2.subarray(0, 16), rules: { peekBytes: 40 }, code: 'ERR_PROXY_V2_TOO_LONG' },
  ];
  for (const row of table) {
    const rules = { ...RULES, ...row.rules };
    for (const { way, chunks } of deliveries(row.bytes)) {
      const { step } = feed(chunks, rules, row.trusted ?? true);
      t.same(step, { kind: 'refuse', code: row.code }, `${row.name} (${way})`);
    }
  }
});

t.test('bytes that are not an HTTP/1.x head decide at once, without a head', async (t) => {
  const clientHello = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);
  t.same(feed([clientHello]).step, { kind: 'decide', head: null }, 'a TLS ClientHello');
  t.same(feed([Buffer.concat([V1, clientHello])]).step, { kind: 'decide', head: null }, 'a ClientHello after a PROXY header');
  t.same(feed([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')]).step, { kind: 'decide', head: null }, 'the HTTP/2 preface');
});

t.test('with no head needed, an honoured PROXY header decides by itself; with PROXY off too, nothing needs a byte', async (t) => {
  const rules = { ...RULES, needsHead: false };
  t.same(feed([V1]).step.kind, 'wait', 'the head is needed: a header alone waits');
  const outcome = feed([V1], rules);
  t.same(outcome.step, { kind: 'decide', head: null });
  t.equal(outcome.state.offset, V1.length);
  t.equal(decidesWithoutBytes(rules), false, 'a PROXY header may still come');
  t.equal(decidesWithoutBytes({ ...rules, proxyMode: 'off' }), true);
  t.equal(newPeekState(true, { ...rules, proxyMode: 'off' }).phase, 'head', 'PROXY off: straight to the head');
});

t.test('a slow drip without a line end waits, and decides without a head at peekBytes', async (t) => {
  const rules = { ...RULES, peekBytes: 2048 };
  const state = newPeekState(true, rules);
  const start = Buffer.from('GET /' + 'a'.repeat(600));
  t.same(readPeek(state, start, rules), { kind: 'wait' });
  let step: PeekStep = { kind: 'wait' };
  let sent = start.length;
  while (step.kind === 'wait' && sent < 4096) {
    step = readPeek(state, Buffer.from('b'), rules);
    sent++;
  }
  t.same(step, { kind: 'decide', head: null });
  t.equal(sent, 2048, 'at exactly peekBytes');
});

t.test('property: any bytes, any split: never throws, and the decision does not depend on the split', async (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(), fc.boolean(), (bytes, cutSeed, trusted) => {
      const buf = Buffer.from(bytes);
      const cut = buf.length === 0 ? 0 : cutSeed % buf.length;
      const whole = summary(feed([buf], RULES, trusted));
      const split = summary(feed([buf.subarray(0, cut), buf.subarray(cut)].filter((chunk) => chunk.length > 0), RULES, trusted));
      return JSON.stringify(whole) === JSON.stringify(split);
    }),
    { numRuns: 2000 },
  );
  t.pass('held for every generated case');
});
