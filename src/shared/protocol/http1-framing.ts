/**
 * Where an HTTP/1.x request ends (RFC 9112 section 6), pure over Buffers: the
 * worker runtime frames requests itself on connections where each request may
 * have to go to another worker (key.reuse "handback"), so it must know
 * the byte where the next request starts without letting Node's parser read
 * ahead.
 *
 * The rule that makes this safe: whenever these functions give a boundary,
 * Node 20's llhttp (strict mode) either puts it at the same byte or refuses the
 * request (answering 400 and closing). Anything unusual is an error here, and
 * the caller then stops framing and passes every later byte to Node untouched
 * ("passthrough"): a connection may lose per-request routing, never a byte.
 * - Content-Length must be 1*DIGIT, once (llhttp refuses duplicates, lists and
 *   signs; RFC 9112 6.3 point 5).
 * - Transfer-Encoding must end with `chunked`, appear with HTTP/1.1 only and
 *   never with Content-Length (llhttp refuses the latter; RFC 9112 6.3 point 3
 *   calls it smuggling).
 * - A request with an Upgrade field, or a CONNECT, is `opaque`: what follows its
 *   head may be another protocol (RFC 9110 7.8, 9.3.6); the connection is then
 *   the upgrading request's worker's. This is a superset of what Node upgrades.
 */
import type { ErrorCode } from '../errors.js';
import type { RequestHead } from './http1.js';
import { COLON, CR, HTAB, LF, SP } from './ascii.js';

/** How the body of a request is delimited. */
export type RequestFraming =
  /** `length` bytes follow the head (0: no body). */
  | { readonly kind: 'length'; readonly length: number }
  /** A chunked body follows the head ({@link scanChunked}). */
  | { readonly kind: 'chunked' }
  /** Upgrade or CONNECT: every later byte belongs to this request's worker. */
  | { readonly kind: 'opaque' }
  | { readonly kind: 'error'; readonly code: ErrorCode };

const NAME_CONTENT_LENGTH = Buffer.from('content-length', 'latin1');
const NAME_TRANSFER_ENCODING = Buffer.from('transfer-encoding', 'latin1');

/**
 * Largest Content-Length taken: 15 digits stays below 2^53 (9,007,199,254,740,992
 * has 16 digits), so the count is exact in a JS number. Larger is refused here
 * (passthrough), not by llhttp, which is the safe direction.
 */
const MAX_LENGTH_DIGITS = 15;

const BAD_LENGTH = Object.freeze({ kind: 'error', code: 'ERR_HTTP_BAD_LENGTH' } as const);
const BAD_TE = Object.freeze({ kind: 'error', code: 'ERR_HTTP_BAD_TRANSFER_ENCODING' } as const);
const OPAQUE = Object.freeze({ kind: 'opaque' } as const);
const CHUNKED = Object.freeze({ kind: 'chunked' } as const);
const NO_BODY = Object.freeze({ kind: 'length', length: 0 } as const);

function nameEquals(buf: Buffer, start: number, end: number, lower: Buffer): boolean {
  if (end - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) if (((buf[start + i] as number) | 0x20) !== lower[i]) return false;
  return true;
}

/**
 * The body framing of a request whose head {@link parseRequestHead} accepted:
 * `head` is its result and `buf[start, start + headLength)` its bytes (the head
 * grammar is already validated, so lines here are well-formed `name: value`).
 */
export function requestFraming(buf: Buffer, start: number, headLength: number, head: RequestHead): RequestFraming {
  if (head.upgrade !== undefined || head.method === 'CONNECT') return OPAQUE;
  const end = start + headLength;
  let pos = start;
  // Skip leading empty lines and the request line.
  while (pos < end && (buf[pos] === CR || buf[pos] === LF)) pos++;
  pos = buf.indexOf(LF, pos) + 1;
  let length = -1;
  let transferEncoding: string | null = null;
  while (pos > 0 && pos < end) {
    const lineEnd = buf.indexOf(LF, pos); // a field line ends with CRLF (validated)
    if (lineEnd < 0 || lineEnd >= end) break;
    const valueEndRaw = lineEnd - 1; // the CR
    if (valueEndRaw <= pos) break; // the empty line ending the head
    const colon = buf.indexOf(COLON, pos);
    if (colon > 0 && colon < valueEndRaw) {
      const isLength = nameEquals(buf, pos, colon, NAME_CONTENT_LENGTH);
      const isTe = !isLength && nameEquals(buf, pos, colon, NAME_TRANSFER_ENCODING);
      if (isLength || isTe) {
        let valueStart = colon + 1;
        let valueEnd = valueEndRaw;
        while (valueStart < valueEnd && (buf[valueStart] === SP || buf[valueStart] === HTAB)) valueStart++;
        while (valueEnd > valueStart && (buf[valueEnd - 1] === SP || buf[valueEnd - 1] === HTAB)) valueEnd--;
        if (isLength) {
          if (length !== -1) return BAD_LENGTH; // llhttp: "Duplicate Content-Length"
          const digits = valueEnd - valueStart;
          if (digits === 0 || digits > MAX_LENGTH_DIGITS) return BAD_LENGTH;
          let value = 0;
          for (let i = valueStart; i < valueEnd; i++) {
            const c = buf[i] as number;
            if (c < 0x30 || c > 0x39) return BAD_LENGTH;
            value = value * 10 + (c - 0x30);
          }
          length = value;
        } else {
          const value = buf.toString('latin1', valueStart, valueEnd);
          transferEncoding = transferEncoding === null ? value : `${transferEncoding},${value}`;
        }
      }
    }
    pos = lineEnd + 1;
  }
  if (transferEncoding !== null) {
    if (length !== -1) return BAD_LENGTH;
    if (head.version !== '1.1') return BAD_TE;
    const codings = transferEncoding.split(',');
    const last = (codings[codings.length - 1] as string).trim().toLowerCase();
    if (last !== 'chunked') return BAD_TE;
    // `chunked` applied twice is an error too (RFC 9112 7: "MUST NOT apply chunked more than once").
    for (let i = 0; i < codings.length - 1; i++) if ((codings[i] as string).trim().toLowerCase() === 'chunked') return BAD_TE;
    return CHUNKED;
  }
  return length <= 0 ? NO_BODY : { kind: 'length', length };
}

/** Where a chunked body scan is (RFC 9112 7.1). */
export interface ChunkedState {
  phase: 'size' | 'ext' | 'size-lf' | 'data' | 'data-cr' | 'data-lf' | 'trailer-start' | 'trailer' | 'trailer-lf' | 'final-lf';
  /** The chunk size being read, then the data bytes still to come. */
  remaining: number;
  /** Hex digits of the size so far. */
  digits: number;
  /** Bytes of chunk extensions and trailers so far (bounded). */
  metaBytes: number;
}

/** A fresh scan, at the first chunk-size line. */
export function newChunkedState(): ChunkedState {
  return { phase: 'size', remaining: 0, digits: 0, metaBytes: 0 };
}

/**
 * Most hex digits in a chunk size: 13 digits stay below 2^52, exact in a JS
 * number. llhttp takes up to 16; a larger chunk is refused here (passthrough).
 */
const MAX_CHUNK_SIZE_DIGITS = 13;
/**
 * Most bytes of chunk extensions plus trailer fields per body: Node answers 413
 * beyond 16 KiB of extensions (HPE_CHUNK_EXTENSIONS_OVERFLOW); trailers are
 * bounded like a head.
 */
export const MAX_CHUNK_META_BYTES = 16 * 1024;

/** What {@link scanChunked} found in the bytes it was given. */
export type ChunkedScan =
  /** Every given byte is body; the body goes on. */
  | { readonly kind: 'more' }
  /** The body ends after `consumed` of the given bytes (the last chunk and trailers included). */
  | { readonly kind: 'done'; readonly consumed: number }
  | { readonly kind: 'error'; readonly code: ErrorCode };

const MORE = Object.freeze({ kind: 'more' } as const);
const BAD_CHUNK = Object.freeze({ kind: 'error', code: 'ERR_HTTP_BAD_CHUNK' } as const);

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/**
 * Scans `buf[offset..]` as the continuation of a chunked body, updating
 * `state`. Incremental: the answer for a body does not depend on how it is
 * split. Strict: CRLF line ends only, no whitespace around the size, at most
 * {@link MAX_CHUNK_SIZE_DIGITS} digits, extensions and trailers at most
 * {@link MAX_CHUNK_META_BYTES}, no CTL other than HTAB in them.
 */
export function scanChunked(state: ChunkedState, buf: Buffer, offset: number): ChunkedScan {
  let pos = offset;
  const end = buf.length;
  while (pos < end) {
    const c = buf[pos] as number;
    switch (state.phase) {
      case 'size': {
        const digit = hexValue(c);
        if (digit >= 0) {
          if (++state.digits > MAX_CHUNK_SIZE_DIGITS) return BAD_CHUNK;
          state.remaining = state.remaining * 16 + digit;
        } else if (state.digits === 0) {
          return BAD_CHUNK;
        } else if (c === 0x3b /* ; */) {
          state.phase = 'ext';
        } else if (c === CR) {
          state.phase = 'size-lf';
        } else {
          return BAD_CHUNK;
        }
        pos++;
        break;
      }
      case 'ext':
        if (c === CR) state.phase = 'size-lf';
        else if ((c < SP && c !== HTAB) || c === 0x7f || ++state.metaBytes > MAX_CHUNK_META_BYTES) return BAD_CHUNK;
        pos++;
        break;
      case 'size-lf':
        if (c !== LF) return BAD_CHUNK;
        state.phase = state.remaining === 0 ? 'trailer-start' : 'data';
        pos++;
        break;
      case 'data': {
        const take = Math.min(state.remaining, end - pos);
        state.remaining -= take;
        pos += take;
        if (state.remaining === 0) state.phase = 'data-cr';
        break;
      }
      case 'data-cr':
        if (c !== CR) return BAD_CHUNK;
        state.phase = 'data-lf';
        pos++;
        break;
      case 'data-lf':
        if (c !== LF) return BAD_CHUNK;
        state.phase = 'size';
        state.digits = 0;
        pos++;
        break;
      case 'trailer-start':
        if (c === CR) state.phase = 'final-lf';
        else if (c === LF || c === SP || c === HTAB) return BAD_CHUNK; // bare LF, obs-fold
        else state.phase = 'trailer';
        if (++state.metaBytes > MAX_CHUNK_META_BYTES) return BAD_CHUNK;
        pos++;
        break;
      case 'trailer':
        if (c === CR) state.phase = 'trailer-lf';
        else if ((c < SP && c !== HTAB) || c === 0x7f) return BAD_CHUNK;
        if (++state.metaBytes > MAX_CHUNK_META_BYTES) return BAD_CHUNK;
        pos++;
        break;
      case 'trailer-lf':
        if (c !== LF) return BAD_CHUNK;
        state.phase = 'trailer-start';
        pos++;
        break;
      case 'final-lf':
        if (c !== LF) return BAD_CHUNK;
        return { kind: 'done', consumed: pos + 1 - offset };
    }
  }
  return MORE;
}

/**
 * Whether the first request in `buf` is the connection's last one by its own
 * head (RFC 9112 9.3 and 9.6): HTTP/1.1 with a `close` connection option, or
 * HTTP/1.0 without `keep-alive`. Such a connection cannot carry another request,
 * so key.reuse has nothing to look at on it. False when the head is not complete
 * in `buf` (then nobody can tell yet).
 */
export function firstRequestCloses(buf: Buffer): boolean {
  const end = buf.indexOf('\r\n\r\n');
  if (end === -1) return false;
  const head = buf.toString('latin1', 0, end);
  const lineEnd = head.indexOf('\r\n');
  const requestLine = lineEnd === -1 ? head : head.slice(0, lineEnd);
  let closes = requestLine.endsWith(' HTTP/1.0');
  if (lineEnd === -1) return closes;
  for (const line of head.slice(lineEnd + 2).split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon !== 10 || line.slice(0, 10).toLowerCase() !== 'connection') continue;
    for (const option of line.slice(colon + 1).split(',')) {
      const token = option.trim().toLowerCase();
      if (token === 'close') return true;
      if (token === 'keep-alive') closes = false;
    }
  }
  return closes;
}
