import fc from 'fast-check';
import t from 'tap';
import type { ErrorCode } from '../../../src/shared/errors.js';
import { parseRequestHead } from '../../../src/shared/protocol/http1.js';
import { type ChunkedScan, firstRequestCloses, newChunkedState, type RequestFraming, requestFraming, scanChunked } from '../../../src/shared/protocol/http1-framing.js';

function framing(head: string): RequestFraming {
  const buf = Buffer.from(head, 'latin1');
  const parsed = parseRequestHead(buf, 0, 65536);
  if (parsed.kind !== 'done') throw new Error(`fixture head did not parse: ${parsed.kind}`);
  return requestFraming(buf, 0, parsed.consumed, parsed.value);
}

t.test('requestFraming: valid heads', async (t) => {
  const table: Array<{ name: string; head: string; want: RequestFraming }> = [
    { name: 'GET without body', head: 'GET / HTTP/1.1\r\nhost: x\r\n\r\n', want: { kind: 'length', length: 0 } },
    { name: 'Content-Length', head: 'POST / HTTP/1.1\r\ncontent-length: 42\r\n\r\n', want: { kind: 'length', length: 42 } },
    { name: 'Content-Length case and OWS', head: 'POST / HTTP/1.1\r\nCoNtEnT-LeNgTh: \t7 \r\n\r\n', want: { kind: 'length', length: 7 } },
    { name: 'Content-Length 0', head: 'POST / HTTP/1.1\r\ncontent-length: 0\r\n\r\n', want: { kind: 'length', length: 0 } },
    { name: 'leading zeros', head: 'POST / HTTP/1.1\r\ncontent-length: 007\r\n\r\n', want: { kind: 'length', length: 7 } },
    { name: 'chunked', head: 'POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n', want: { kind: 'chunked' } },
    { name: 'gzip, chunked', head: 'POST / HTTP/1.1\r\ntransfer-encoding: gzip, Chunked\r\n\r\n', want: { kind: 'chunked' } },
    { name: 'two TE fields', head: 'POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n', want: { kind: 'chunked' } },
    { name: 'upgrade', head: 'GET /ws HTTP/1.1\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n', want: { kind: 'opaque' } },
    { name: 'upgrade without connection token (superset of Node)', head: 'GET / HTTP/1.1\r\nupgrade: h2c\r\n\r\n', want: { kind: 'opaque' } },
    { name: 'CONNECT', head: 'CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n', want: { kind: 'opaque' } },
    { name: 'leading empty lines', head: '\r\n\r\nPOST / HTTP/1.1\r\ncontent-length: 3\r\n\r\n', want: { kind: 'length', length: 3 } },
    { name: 'a name that only starts like content-length', head: 'POST / HTTP/1.1\r\ncontent-lengthx: 5\r\n\r\n', want: { kind: 'length', length: 0 } },
  ];
  for (const { name, head, want } of table) t.same(framing(head), want, name);
});

t.test('requestFraming: refused (the caller passes the bytes through to Node)', async (t) => {
  const table: Array<{ name: string; head: string; code: ErrorCode }> = [
    { name: 'duplicate Content-Length', head: 'POST / HTTP/1.1\r\ncontent-length: 5\r\ncontent-length: 5\r\n\r\n', code: 'ERR_HTTP_BAD_LENGTH' },
    { name: 'list', head: 'POST / HTTP/1.1\r\ncontent-length: 5, 5\r\n\r\n', code: 'ERR_HTTP_BAD_LENGTH' },
    { name: 'sign', head: 'POST / HTTP/1.1\r\ncontent-length: +5\r\n\r\n', code: 'ERR_HTTP_BAD_LENGTH' },
    { name: 'empty', head: 'POST / HTTP/1.1\r\ncontent-length: \r\n\r\n', code: 'ERR_HTTP_BAD_LENGTH' },
    { name: 'hex', head: 'POST / HTTP/1.1\r\ncontent-length: 0x10\r\n\r\n', code: 'ERR_HTTP_BAD_LENGTH' },
    { name: 'over 15 digits', head: 'POST / HTTP/1.1\r\ncontent-length: 1234567890123456\r\n\r\n', code: 'ERR_HTTP_BAD_LENGTH' },
    { name: 'TE with CL (smuggling)', head: 'POST / HTTP/1.1\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n', code: 'ERR_HTTP_BAD_LENGTH' },
    { name: 'TE not ending in chunked', head: 'POST / HTTP/1.1\r\ntransfer-encoding: chunked, gzip\r\n\r\n', code: 'ERR_HTTP_BAD_TRANSFER_ENCODING' },
    { name: 'chunked twice', head: 'POST / HTTP/1.1\r\ntransfer-encoding: chunked, chunked\r\n\r\n', code: 'ERR_HTTP_BAD_TRANSFER_ENCODING' },
    { name: 'chunked with a parameter', head: 'POST / HTTP/1.1\r\ntransfer-encoding: chunked;q=1\r\n\r\n', code: 'ERR_HTTP_BAD_TRANSFER_ENCODING' },
    { name: 'TE in HTTP/1.0', head: 'POST / HTTP/1.0\r\ntransfer-encoding: chunked\r\n\r\n', code: 'ERR_HTTP_BAD_TRANSFER_ENCODING' },
  ];
  for (const { name, head, code } of table) t.same(framing(head), { kind: 'error', code }, name);
});

/** Scans `bytes` delivered in `cuts` pieces with one state; returns the final scan and the total body bytes. */
function scanInPieces(bytes: Buffer, cuts: readonly number[]): { scan: ChunkedScan; body: number } {
  const state = newChunkedState();
  let start = 0;
  let body = 0;
  for (const cut of [...cuts, bytes.length]) {
    if (cut <= start) continue;
    const scan = scanChunked(state, bytes.subarray(start, cut), 0);
    if (scan.kind === 'done') return { scan, body: body + scan.consumed };
    if (scan.kind === 'error') return { scan, body };
    body += cut - start;
    start = cut;
  }
  return { scan: { kind: 'more' }, body };
}

t.test('scanChunked: the end of the body, however the bytes are split', async (t) => {
  const bodies = [
    '0\r\n\r\n',
    '5\r\nhello\r\n0\r\n\r\n',
    'A;name=value\r\n0123456789\r\n1\r\nx\r\n0\r\nx-trailer: 1\r\nother: 2\r\n\r\n',
    'ff\r\n' + 'y'.repeat(255) + '\r\n0;last\r\n\r\n',
  ];
  for (const text of bodies) {
    const next = 'GET /next HTTP/1.1\r\n\r\n';
    const bytes = Buffer.from(text + next, 'latin1');
    const want = Buffer.byteLength(text, 'latin1');
    t.same(scanInPieces(bytes, []).body, want, `whole: ${JSON.stringify(text.slice(0, 20))}`);
    for (let k = 1; k < bytes.length; k++) {
      const { scan, body } = scanInPieces(bytes, [k]);
      if (scan.kind !== 'done' || body !== want) t.fail(`split at ${k}: ${scan.kind} ${body}`);
    }
    const byteByByte = scanInPieces(bytes, Array.from({ length: bytes.length }, (_, i) => i + 1));
    t.same([byteByByte.scan.kind, byteByByte.body], ['done', want], 'byte by byte');
  }
});

t.test('scanChunked: malformed bodies', async (t) => {
  const table: Array<{ name: string; input: string }> = [
    { name: 'no size', input: '\r\n' },
    { name: 'space after size', input: '5 \r\nhello\r\n0\r\n\r\n' },
    { name: 'bare LF after size', input: '5\nhello\r\n0\r\n\r\n' },
    { name: 'missing CRLF after data', input: '5\r\nhelloX\r\n0\r\n\r\n' },
    { name: 'non-hex size', input: 'g\r\n' },
    { name: 'size of 14 hex digits', input: '10000000000000\r\n' },
    { name: 'CTL in extension', input: '5;\x01\r\n' },
    { name: 'bare LF ending the trailers', input: '0\r\n\n' },
    { name: 'obs-fold in trailers', input: '0\r\n x: 1\r\n\r\n' },
    { name: 'CR without LF at the end', input: '0\r\n\rX' },
  ];
  for (const { name, input } of table) t.same(scanChunked(newChunkedState(), Buffer.from(input, 'latin1'), 0), { kind: 'error', code: 'ERR_HTTP_BAD_CHUNK' }, name);
  const longExtension = Buffer.from(`1;${'a'.repeat(16 * 1024 + 1)}\r\n`);
  t.same(scanChunked(newChunkedState(), longExtension, 0), { kind: 'error', code: 'ERR_HTTP_BAD_CHUNK' }, 'extensions beyond 16 KiB');
});

t.test('property: random bytes never throw and never claim more than given', async (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      const scan = scanChunked(newChunkedState(), Buffer.from(bytes), 0);
      return scan.kind !== 'done' || (scan.consumed > 0 && scan.consumed <= bytes.length);
    }),
  );
  t.pass('holds');
});

t.test('firstRequestCloses: the first request ends the connection by its own head', async (t) => {
  const cases: Array<{ name: string; head: string; closes: boolean }> = [
    { name: '1.1 default keep-alive', head: 'GET / HTTP/1.1\r\nhost: x\r\n\r\n', closes: false },
    { name: '1.1 Connection: close', head: 'GET / HTTP/1.1\r\nhost: x\r\nConnection: close\r\n\r\n', closes: true },
    { name: '1.1 close among options', head: 'GET / HTTP/1.1\r\nconnection: upgrade, Close\r\n\r\n', closes: true },
    { name: '1.1 keep-alive', head: 'GET / HTTP/1.1\r\nconnection: keep-alive\r\n\r\n', closes: false },
    { name: '1.0 default close', head: 'GET / HTTP/1.0\r\nhost: x\r\n\r\n', closes: true },
    { name: '1.0 keep-alive', head: 'GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n', closes: false },
    { name: '1.0 no headers', head: 'GET / HTTP/1.0\r\n\r\n', closes: true },
    { name: 'a header named like it', head: 'GET / HTTP/1.1\r\nx-connection: close\r\nconnectionx: close\r\n\r\n', closes: false },
    { name: 'close in a value of another header', head: 'GET /close HTTP/1.1\r\nx-note: connection: close\r\n\r\n', closes: false },
    { name: 'incomplete head', head: 'GET / HTTP/1.1\r\nconnection: close\r\n', closes: false },
  ];
  for (const c of cases) t.equal(firstRequestCloses(Buffer.from(c.head, 'latin1')), c.closes, c.name);
  t.equal(firstRequestCloses(Buffer.from('GET / HTTP/1.0\r\n\r\nGET /next HTTP/1.1\r\n\r\n')), true, 'only the first request counts');
});
