import t from 'tap';
import fc from 'fast-check';
import { MAX_METHOD_BYTES, parseRequestHead, type RequestHead } from '../../../src/shared/protocol/http1.js';
import type { ErrorCode } from '../../../src/shared/errors.js';
import { feedAllWays } from '../../helpers/split.js';

const MAX = 16384;
const parse = (bytes: Buffer, maxBytes = MAX) => parseRequestHead(bytes, 0, maxBytes);
const b = (text: string) => Buffer.from(text, 'latin1');

/** Defaults of a head with only a request line. */
const BASE: RequestHead = {
  method: 'GET',
  target: '/',
  version: '1.1',
  host: undefined,
  cookie: undefined,
  forwardedFor: [],
  forwarded: [],
  upgrade: undefined,
};

const LONG = 'x'.repeat(300);
const OBS_TEXT = '\x80\xe9\xff caf\xe9';

const valid: Array<{ name: string; input: string; want: Partial<RequestHead>; trailing?: string }> = [
  { name: 'request line only', input: 'GET / HTTP/1.1\r\n\r\n', want: {} },
  { name: 'HTTP/1.0', input: 'GET / HTTP/1.0\r\n\r\n', want: { version: '1.0' } },
  { name: 'POST with body after the head', input: 'POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n', trailing: 'hello', want: { method: 'POST', target: '/echo', host: 'a' } },
  { name: 'other method', input: 'M-SEARCH * HTTP/1.1\r\n\r\n', want: { method: 'M-SEARCH', target: '*' } },
  { name: 'method of 32 bytes', input: `${'A'.repeat(MAX_METHOD_BYTES)} / HTTP/1.1\r\n\r\n`, want: { method: 'A'.repeat(MAX_METHOD_BYTES) } },
  { name: 'lowercase method (a token; the worker decides)', input: 'get / HTTP/1.1\r\n\r\n', want: { method: 'get' } },
  { name: 'long absolute-form target', input: `GET http://example.com/${LONG}?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n`, want: { target: `http://example.com/${LONG}?q=1`, host: 'example.com' } },
  { name: 'leading CRLF lines', input: '\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n', want: { host: 'a' } },
  { name: 'leading bare LF lines', input: '\n\nGET / HTTP/1.1\r\n\r\n', want: {} },
  {
    name: 'browser head',
    input:
      'GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: app.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\nAccept: */*\r\nCookie: _ga=GA1.2.3; sid=abc123\r\nX-Forwarded-For: 198.51.100.22, 203.0.113.7\r\nConnection: keep-alive\r\n\r\n',
    want: { target: '/socket.io/?EIO=4&transport=polling', host: 'app.example.com', cookie: '_ga=GA1.2.3; sid=abc123', forwardedFor: ['198.51.100.22, 203.0.113.7'] },
  },
  {
    name: 'names are case-insensitive; first Host and Upgrade win',
    input: 'GET / HTTP/1.1\r\nHOST: one\r\nhost: two\r\nuPgRaDe: websocket\r\nUpgrade: h2c\r\nX-FORWARDED-FOR: 1.1.1.1\r\nFORWARDED: for=2.2.2.2\r\nCOOKIE: a=1\r\n\r\n',
    want: { host: 'one', upgrade: 'websocket', forwardedFor: ['1.1.1.1'], forwarded: ['for=2.2.2.2'], cookie: 'a=1' },
  },
  {
    name: 'repeated list fields are kept in order; Cookie lines joined with "; "',
    input: 'GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nCookie: a=1\r\nX-Forwarded-For: 2.2.2.2, 3.3.3.3\r\nForwarded: for=4.4.4.4\r\nCookie: b=2; c=3\r\nForwarded: for="[::1]:80"\r\n\r\n',
    want: { forwardedFor: ['1.1.1.1', '2.2.2.2, 3.3.3.3'], forwarded: ['for=4.4.4.4', 'for="[::1]:80"'], cookie: 'a=1; b=2; c=3' },
  },
  { name: 'OWS around values trimmed, inner kept, HTAB allowed', input: 'GET / HTTP/1.1\r\nHost:\t  a b\t \r\nCookie:x=1\r\n\r\n', want: { host: 'a b', cookie: 'x=1' } },
  { name: 'empty values', input: 'GET / HTTP/1.1\r\nHost:\r\nCookie:   \r\nX-Forwarded-For: \r\n\r\n', want: { host: '', cookie: '', forwardedFor: [''] } },
  { name: 'obs-text in values is latin1', input: `GET / HTTP/1.1\r\nHost: ${OBS_TEXT}\r\nX-Other: ${OBS_TEXT}${LONG}\r\n\r\n`, want: { host: OBS_TEXT } },
  { name: 'long values (word-at-a-time scanning)', input: `GET /${LONG} HTTP/1.1\r\nCookie: sid=${LONG}\r\nX-Long: ${LONG}\t${LONG}\r\nUpgrade: websocket\r\n\r\n`, want: { target: `/${LONG}`, cookie: `sid=${LONG}`, upgrade: 'websocket' } },
  { name: 'names of kept lengths that are other fields', input: 'GET / HTTP/1.1\r\nHosT-: a\r\nHostx: b\r\nhose: c\r\ncookiE2: d\r\nupgradE: e\r\nforwardeD: f\r\nx-forwarded-foR: g\r\nx-forwarded-fo_: h\r\nForwarder: i\r\nUpgrad3: j\r\nCookiz: k\r\n\r\n', want: { upgrade: 'e', forwarded: ['f'], forwardedFor: ['g'] } },
  { name: 'many kept fields (grows the scratch table)', input: `GET / HTTP/1.1\r\n${'X-Forwarded-For: 10.0.0.1\r\n'.repeat(40)}\r\n`, want: { forwardedFor: Array<string>(40).fill('10.0.0.1') } },
];

t.test('valid heads: whole, byte by byte, split at every offset', async (t) => {
  for (const { name, input, want, trailing = '' } of valid) {
    const head = b(input);
    const expected = { kind: 'done', value: { ...BASE, ...want }, consumed: head.length };
    const outcomes = feedAllWays(Buffer.concat([head, b(trailing)]), (bytes) => parse(bytes));
    for (const outcome of outcomes) {
      t.same(outcome.result, expected, `${name} (${outcome.way})`);
      if (outcome.way === 'byte-by-byte') t.equal(outcome.decidedAt, head.length, `${name}: done exactly at the end of the head`);
      for (const pending of outcome.pending) t.equal(pending.kind, 'need-more');
    }
  }
});

t.test('offset: a head that starts inside the buffer', async (t) => {
  const input = 'GET /x HTTP/1.1\r\nHost: h\r\n\r\n';
  for (let pad = 0; pad < 8; pad++) {
    const buf = Buffer.concat([Buffer.alloc(pad, 0x16), b(input)]);
    t.same(parseRequestHead(buf, pad, MAX), { kind: 'done', value: { ...BASE, target: '/x', host: 'h' }, consumed: input.length });
  }
  t.same(parseRequestHead(b('GET'), 3, MAX), { kind: 'need-more' }, 'offset at the end: nothing yet');
});

const invalid: Array<{ name: string; input: string; code: ErrorCode; at: number; max?: number }> = [
  { name: 'TLS ClientHello', input: '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03', code: 'ERR_HTTP_NOT_HTTP', at: 1 },
  { name: 'NUL byte first', input: '\x00GET', code: 'ERR_HTTP_NOT_HTTP', at: 1 },
  { name: 'SSH banner', input: 'SSH-2.0-OpenSSH_9.6\r\n', code: 'ERR_HTTP_NOT_HTTP', at: 20 },
  { name: 'SSH banner with comment', input: 'SSH-2.0-OpenSSH_9.6 Ubuntu-3ubuntu13\r\n', code: 'ERR_HTTP_NOT_HTTP', at: 37 },
  { name: 'HTTP/2 preface', input: 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', code: 'ERR_HTTP_NOT_HTTP', at: 12 },
  { name: 'HTTP/1.2', input: 'GET / HTTP/1.2\r\n\r\n', code: 'ERR_HTTP_NOT_HTTP', at: 14 },
  { name: 'lowercase http', input: 'GET / http/1.1\r\n\r\n', code: 'ERR_HTTP_NOT_HTTP', at: 7 },
  { name: 'HTTP/0.9', input: 'GET /\r\n', code: 'ERR_HTTP_NOT_HTTP', at: 6 },
  { name: 'method of 33 bytes', input: `${'A'.repeat(33)} / HTTP/1.1\r\n`, code: 'ERR_HTTP_NOT_HTTP', at: 33 },
  { name: 'empty method', input: ' / HTTP/1.1\r\n', code: 'ERR_HTTP_NOT_HTTP', at: 1 },
  { name: 'two spaces after method', input: 'GET  / HTTP/1.1\r\n', code: 'ERR_HTTP_NOT_HTTP', at: 5 },
  { name: 'control byte in target', input: 'GET /\x01 HTTP/1.1\r\n', code: 'ERR_HTTP_NOT_HTTP', at: 6 },
  { name: 'obs-text in a long target', input: `GET /${LONG}\xe9 HTTP/1.1\r\n`, code: 'ERR_HTTP_NOT_HTTP', at: 306 },
  { name: 'DEL in target', input: 'GET /\x7f HTTP/1.1\r\n', code: 'ERR_HTTP_NOT_HTTP', at: 6 },
  { name: 'space after version', input: 'GET / HTTP/1.1 \r\n', code: 'ERR_HTTP_NOT_HTTP', at: 15 },
  { name: 'bare LF after version', input: 'GET / HTTP/1.1\n\n', code: 'ERR_HTTP_NOT_HTTP', at: 15 },
  { name: 'CR without LF after version', input: 'GET / HTTP/1.1\r\r', code: 'ERR_HTTP_NOT_HTTP', at: 16 },
  { name: 'CR without LF before the request line', input: '\r\rGET / HTTP/1.1\r\n\r\n', code: 'ERR_HTTP_NOT_HTTP', at: 2 },
  { name: 'random binary', input: '\x8f\x01\x02', code: 'ERR_HTTP_NOT_HTTP', at: 1 },
  { name: 'no colon', input: 'GET / HTTP/1.1\r\nHost a\r\n\r\n', code: 'ERR_HTTP_BAD_HEADER', at: 21 },
  { name: 'whitespace before colon', input: 'GET / HTTP/1.1\r\nHost : a\r\n\r\n', code: 'ERR_HTTP_BAD_HEADER', at: 21 },
  { name: 'empty name', input: 'GET / HTTP/1.1\r\n: a\r\n\r\n', code: 'ERR_HTTP_BAD_HEADER', at: 17 },
  { name: 'obs-fold', input: 'GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n', code: 'ERR_HTTP_BAD_HEADER', at: 23 },
  { name: 'whitespace before the first field', input: 'GET / HTTP/1.1\r\n Host: a\r\n\r\n', code: 'ERR_HTTP_BAD_HEADER', at: 17 },
  { name: 'bare LF ending a field', input: 'GET / HTTP/1.1\r\nHost: a\n\r\n', code: 'ERR_HTTP_BAD_HEADER', at: 24 },
  { name: 'CR not followed by LF in a value', input: 'GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n', code: 'ERR_HTTP_BAD_HEADER', at: 25 },
  { name: 'NUL in a value', input: 'GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n', code: 'ERR_HTTP_BAD_HEADER', at: 24 },
  { name: 'NUL deep in a long value', input: `GET / HTTP/1.1\r\nX-Long: ${LONG}\x00\r\n\r\n`, code: 'ERR_HTTP_BAD_HEADER', at: 325 },
  { name: 'DEL in a long value', input: `GET / HTTP/1.1\r\nCookie: ${LONG}\x7f${LONG}\r\n\r\n`, code: 'ERR_HTTP_BAD_HEADER', at: 325 },
  { name: 'ESC in a value', input: 'GET / HTTP/1.1\r\nX-Forwarded-For: 1.2.3.4\x1b\r\n\r\n', code: 'ERR_HTTP_BAD_HEADER', at: 41 },
  { name: 'LF inside a value', input: 'GET / HTTP/1.1\r\nCookie: a=1\nsid=2\r\n\r\n', code: 'ERR_HTTP_BAD_HEADER', at: 28 },
  { name: 'CR then not LF ending the head', input: 'GET / HTTP/1.1\r\nHost: a\r\n\rX', code: 'ERR_HTTP_BAD_HEADER', at: 27 },
  { name: 'non-token byte in a name', input: 'GET / HTTP/1.1\r\nHo(st: a\r\n\r\n', code: 'ERR_HTTP_BAD_HEADER', at: 19 },
  { name: 'head larger than maxBytes', input: `GET / HTTP/1.1\r\nX: ${LONG}\r\n\r\n`, code: 'ERR_HTTP_HEAD_TOO_LARGE', at: 100, max: 100 },
  { name: 'endless leading CRLF', input: '\r\n'.repeat(60), code: 'ERR_HTTP_HEAD_TOO_LARGE', at: 100, max: 100 },
  { name: 'head ends one byte past maxBytes', input: 'GET / HTTP/1.1\r\n\r\n', code: 'ERR_HTTP_HEAD_TOO_LARGE', at: 17, max: 17 },
  { name: 'cap inside a CRLF', input: 'GET / HTTP/1.1\r\nA: b\r\n\r\n', code: 'ERR_HTTP_HEAD_TOO_LARGE', at: 21, max: 21 },
  { name: 'cap inside a leading CRLF', input: '\r\nGET / HTTP/1.1\r\n\r\n', code: 'ERR_HTTP_HEAD_TOO_LARGE', at: 1, max: 1 },
];

t.test('invalid heads: exact code, decided at the first impossible byte, however split', async (t) => {
  for (const { name, input, code, at, max = MAX } of invalid) {
    for (const outcome of feedAllWays(b(input), (bytes) => parse(bytes, max))) {
      t.same(outcome.result, { kind: 'error', code }, `${name} (${outcome.way})`);
      if (outcome.way === 'byte-by-byte') t.equal(outcome.decidedAt, at, `${name}: decided after ${at} bytes`);
    }
  }
});

t.test('maxBytes: a head that ends exactly at the cap is done', async (t) => {
  const input = b('GET / HTTP/1.1\r\nA: b\r\n\r\n');
  t.equal(parse(input, input.length).kind, 'done');
  t.equal(parse(Buffer.concat([input, b('body')]), input.length).kind, 'done');
  t.same(parse(input.subarray(0, 10), input.length), { kind: 'need-more' });
});

t.test('programmer errors throw RangeError', async (t) => {
  t.throws(() => parseRequestHead(b('GET'), -1, MAX), RangeError);
  t.throws(() => parseRequestHead(b('GET'), 4, MAX), RangeError);
  t.throws(() => parseRequestHead(b('GET'), 0.5, MAX), RangeError);
  t.throws(() => parseRequestHead(b('GET'), 0, 0), RangeError);
  t.throws(() => parseRequestHead(b('GET'), 0, Number.NaN), RangeError);
});

const TCHAR = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]";
/** An independent statement of the accepted grammar, used as the oracle. */
const ORACLE = new RegExp(
  `^(?:\\r\\n|\\n)*${TCHAR}{1,${MAX_METHOD_BYTES}} [\\x21-\\x7e]+ HTTP/1\\.[01]\\r\\n(?:${TCHAR}+:[\\t\\x20-\\x7e\\x80-\\xff]*\\r\\n)*\\r\\n`,
);

function checkAgainstOracle(bytes: Buffer, maxBytes: number): boolean {
  const result = parseRequestHead(bytes, 0, maxBytes);
  const match = ORACLE.exec(bytes.toString('latin1'));
  if (match !== null && match[0].length <= maxBytes) {
    return result.kind === 'done' && result.consumed === match[0].length;
  }
  return result.kind === 'need-more' || result.kind === 'error';
}

const seeds = valid.map((v) => b(v.input + (v.trailing ?? '')));
const mutatedHead = fc
  .tuple(
    fc.constantFrom(...seeds),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'insert', 'delete')), { maxLength: 4 }),
  )
  .map(([seed, edits]) => {
    const bytes = [...seed];
    for (const [where, value, how] of edits) {
      const i = where % (bytes.length + 1);
      if (how === 'set' && i < bytes.length) bytes[i] = value;
      else if (how === 'insert') bytes.splice(i, 0, value);
      else bytes.splice(i, 1);
    }
    return Buffer.from(bytes);
  });

t.test('property: random bytes never throw and give one of the three kinds', async (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 1, max: 400 }), (bytes, maxBytes) => {
      const kind = parseRequestHead(Buffer.from(bytes), 0, maxBytes).kind;
      return kind === 'need-more' || kind === 'done' || kind === 'error';
    }),
    { numRuns: 5000 },
  );
  t.pass();
});

t.test('property: mutated heads agree with the grammar oracle at every cap', async (t) => {
  fc.assert(
    fc.property(mutatedHead, fc.integer({ min: 1, max: 1200 }), (bytes, maxBytes) => checkAgainstOracle(bytes, maxBytes)),
    { numRuns: 5000 },
  );
  t.pass();
});

t.test('property: prefixes of a head are need-more or the same error, never a different answer', async (t) => {
  fc.assert(
    fc.property(mutatedHead, fc.nat(), (bytes, cut) => {
      const whole = parse(bytes);
      const prefix = parse(Buffer.from(bytes.subarray(0, cut % (bytes.length + 1))));
      if (prefix.kind === 'need-more') return true;
      return JSON.stringify(prefix) === JSON.stringify(whole);
    }),
    { numRuns: 5000 },
  );
  t.pass();
});
