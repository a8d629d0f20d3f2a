/**
 * HTTP/1.x request head parser (RFC 9112 sections 2-5), pure over a Buffer.
 *
 * The master runs this on every connection to find the fields a client key can
 * come from, so it is written for that job:
 * - it validates the grammar of the whole head (so non-HTTP bytes are refused
 *   at the first impossible byte and the answer does not depend on how the
 *   bytes were split), but decodes only the fields it keeps, latin1, once;
 * - header names are compared case-insensitively on the bytes, without a
 *   string per header;
 * - it keeps no state between calls: the caller passes everything read so far.
 *
 * Decisions, all matching Node 20's llhttp in its default (strict) mode, so the
 * master never accepts a head the worker's parser would answer with 400:
 * - Line ends are CRLF. A bare LF is refused (llhttp accepts it only when
 *   lenient); RFC 9112 2.2 allows either choice.
 * - Empty lines (CRLF or LF) before the request line are skipped, as RFC 9112
 *   2.2 recommends and llhttp does.
 * - obs-fold (a line starting with SP/HTAB), whitespace between a field name
 *   and the colon, a CR not followed by LF, and a CTL (NUL, DEL, ...) in a field
 *   value are ERR_HTTP_BAD_HEADER (RFC 9112 5.1, 5.2).
 * - The request line follows the RFC grammar: method = token (at most
 *   {@link MAX_METHOD_BYTES}), one SP, a request-target of visible ASCII, one
 *   SP, `HTTP/1.0` or `HTTP/1.1`, CRLF. llhttp additionally restricts methods
 *   to its known list; that is the worker's business, not the key's.
 * - A missing Host is not an error here (host is then undefined): the key does
 *   not need it, and the worker's server answers such a request.
 */
import type { ParseResult } from './result.js';
import { NEED_MORE } from './result.js';
import { COLON, CR, HTAB, LF, SP } from './ascii.js';

/** A parsed HTTP/1.x request head: the request line and the fields a client key can come from. */
export interface RequestHead {
  /** Request method, e.g. `GET` (case as sent). */
  readonly method: string;
  /** Request target as sent (origin-form, absolute-form, authority-form or `*`). */
  readonly target: string;
  /** HTTP minor version. */
  readonly version: '1.0' | '1.1';
  /** Value of the first Host field. */
  readonly host: string | undefined;
  /** All Cookie field values joined with `'; '` (RFC 9113 8.2.3 style). */
  readonly cookie: string | undefined;
  /** Every X-Forwarded-For field value, in order (raw, OWS trimmed). */
  readonly forwardedFor: readonly string[];
  /** Every Forwarded (RFC 7239) field value, in order (raw, OWS trimmed). */
  readonly forwarded: readonly string[];
  /** Value of the first Upgrade field (e.g. `websocket`). */
  readonly upgrade: string | undefined;
}

/**
 * Longest method accepted. The longest registered method in the IANA HTTP
 * Method Registry is `UPDATEREDIRECTREF` (17 bytes); 32 leaves room for
 * extensions while refusing a long run of token bytes (e.g. base64 garbage)
 * early.
 */
export const MAX_METHOD_BYTES = 32;

/** Byte classes. */
const TCHAR = 1; // RFC 9110 5.6.2 token character
const TARGET = 2; // request-target byte: VCHAR (RFC 3986 characters are a subset)
const FIELD = 4; // field-content byte or OWS: VCHAR, obs-text, SP, HTAB (RFC 9110 5.5)

const CLASS = new Uint8Array(256);
for (let c = 0x21; c <= 0x7e; c++) CLASS[c] = (CLASS[c] as number) | TARGET | FIELD;
for (let c = 0x80; c <= 0xff; c++) CLASS[c] = FIELD; // obs-text
CLASS[SP] = FIELD;
CLASS[HTAB] = FIELD;
for (const ch of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") {
  const c = ch.charCodeAt(0);
  CLASS[c] = (CLASS[c] as number) | TCHAR;
}

/** `HTTP/1.` as bytes; the next byte is the minor version. */
const HTTP_VERSION_PREFIX = Buffer.from('HTTP/1.', 'latin1');

/** Lowercase names of the kept fields; matched by length first, then bytes. */
const NAME_HOST = Buffer.from('host', 'latin1');
const NAME_COOKIE = Buffer.from('cookie', 'latin1');
const NAME_UPGRADE = Buffer.from('upgrade', 'latin1');
const NAME_FORWARDED = Buffer.from('forwarded', 'latin1');
const NAME_X_FORWARDED_FOR = Buffer.from('x-forwarded-for', 'latin1');

const NOT_HTTP = Object.freeze({ kind: 'error', code: 'ERR_HTTP_NOT_HTTP' } as const);
const BAD_HEADER = Object.freeze({ kind: 'error', code: 'ERR_HTTP_BAD_HEADER' } as const);
const TOO_LARGE = Object.freeze({ kind: 'error', code: 'ERR_HTTP_HEAD_TOO_LARGE' } as const);
const NO_VALUES: readonly string[] = Object.freeze([]);

/**
 * Case-insensitive comparison of a validated field name with a lowercase name.
 * `byte | 0x20` folds ASCII letters; the only other byte it maps onto one of
 * the lowercase letters or '-' is CR (0x0d → '-'), which is not a token byte.
 */
function nameEquals(buf: Buffer, start: number, lower: Buffer): boolean {
  for (let i = 0; i < lower.length; i++) {
    if (((buf[start + i] as number) | 0x20) !== lower[i]) return false;
  }
  return true;
}

/** `Buffer#latin1Slice` skips `toString`'s argument normalisation; it exists on every Node Buffer. */
type Latin1Slicer = { latin1Slice(start: number, end: number): string };

function latin1(buf: Buffer, start: number, end: number): string {
  return (buf as unknown as Latin1Slicer).latin1Slice(start, end);
}

/*
 * Word-at-a-time scanning ("SWAR"). The bulk of a head is field values and the
 * request-target; checking them four bytes per step instead of one roughly
 * halves the parse time. The tests are the "has a byte less than n" and "has a
 * zero byte" tricks (Bit Twiddling Hacks, Sean Eron Anderson): exact as a
 * yes/no for the word; when a word says yes, the bytes are looked at one by one.
 * Byte order does not matter for a yes/no, so the platform's endianness is fine.
 */

/** Int32 view over the whole ArrayBuffer of the last Buffer seen (created once per ArrayBuffer). */
let wordsBuffer: ArrayBufferLike | undefined;
let wordsView: Int32Array<ArrayBufferLike> = new Int32Array(0);

function wordsOf(buf: Buffer): Int32Array<ArrayBufferLike> {
  const backing = buf.buffer;
  if (backing !== wordsBuffer) {
    wordsBuffer = backing;
    wordsView = new Int32Array(backing, 0, backing.byteLength >>> 2);
  }
  return wordsView;
}

/** Nonzero when a word has a byte below 0x20 (a CTL, incl. HTAB and CR) or equal to 0x7f (DEL). */
function fieldWordFlag(x: number): number {
  const del = x ^ 0x7f7f7f7f;
  return (((x - 0x20202020) & ~x) | ((del - 0x01010101) & ~del)) & 0x80808080;
}

/** Nonzero when a word has a byte that is not VCHAR: below 0x21, 0x7f, or 0x80 and above. */
function targetWordFlag(x: number): number {
  const del = x ^ 0x7f7f7f7f;
  return (((x - 0x21212121) & ~x) | ((del - 0x01010101) & ~del) | x) & 0x80808080;
}

/**
 * First index in `[pos, limit)` whose byte is not a field-content byte (or
 * OWS), or `limit`. `words` is {@link wordsOf} `buf`.
 */
function scanFieldValue(buf: Buffer, words: Int32Array<ArrayBufferLike>, pos: number, limit: number): number {
  if (limit - pos >= 16) {
    const base = buf.byteOffset;
    while (((base + pos) & 3) !== 0) {
      if (((CLASS[buf[pos] as number] as number) & FIELD) === 0) return pos;
      pos++;
    }
    let word = (base + pos) >>> 2;
    const wordEnd = (base + limit) >>> 2; // words lying wholly before limit
    while (word < wordEnd && fieldWordFlag(words[word] as number) === 0) word++;
    pos = (word << 2) - base;
  }
  while (pos < limit && ((CLASS[buf[pos] as number] as number) & FIELD) !== 0) pos++;
  return pos;
}

/** Like {@link scanFieldValue} for request-target bytes (VCHAR). */
function scanTarget(buf: Buffer, words: Int32Array<ArrayBufferLike>, pos: number, limit: number): number {
  if (limit - pos >= 16) {
    const base = buf.byteOffset;
    while (((base + pos) & 3) !== 0) {
      if (((CLASS[buf[pos] as number] as number) & TARGET) === 0) return pos;
      pos++;
    }
    let word = (base + pos) >>> 2;
    const wordEnd = (base + limit) >>> 2;
    while (word < wordEnd && targetWordFlag(words[word] as number) === 0) word++;
    pos = (word << 2) - base;
  }
  while (pos < limit && ((CLASS[buf[pos] as number] as number) & TARGET) !== 0) pos++;
  return pos;
}

/** Kept field ids, recorded while scanning. */
const FIELD_HOST = 1;
const FIELD_COOKIE = 2;
const FIELD_UPGRADE = 3;
const FIELD_FORWARDED = 4;
const FIELD_X_FORWARDED_FOR = 5;

/**
 * (field, start, end) triples of the kept fields of the head being parsed. One
 * module-level array: the parser is synchronous and never re-entered.
 */
let keptFields: Int32Array<ArrayBufferLike> = new Int32Array(3 * 16);

function growKept(old: Int32Array<ArrayBufferLike>): Int32Array<ArrayBufferLike> {
  const grown = new Int32Array(old.length * 2);
  grown.set(old);
  return grown;
}

/** The method as a string; the two common ones without decoding. */
function methodString(head: string, end: number): string {
  if (end === 3 && head.startsWith('GET')) return 'GET';
  if (end === 4 && head.startsWith('POST')) return 'POST';
  return head.slice(0, end);
}

function checkArguments(buf: Buffer, offset: number, maxBytes: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset > buf.length) {
    throw new RangeError(`offset must be an integer in 0..${buf.length}, got ${offset}`);
  }
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
    throw new RangeError(`maxBytes must be a positive integer, got ${maxBytes}`);
  }
}

/**
 * Parses an HTTP/1.x request head that starts at `buf[offset]`. One function
 * on purpose: split into steps it measured a fifth slower (bench/head-parse.ts,
 * bench/README.md), and it runs for every connection.
 *
 *
 * - `done` when the empty line ending the head is seen within the first
 *   `maxBytes` bytes; `consumed` counts the bytes up to and including it
 *   (relative to `offset`, leading empty lines included).
 * - `need-more` only while the bytes so far can still become a valid head and
 *   fewer than `maxBytes` bytes have been seen.
 * - `ERR_HTTP_NOT_HTTP` at the first byte that cannot start or continue a
 *   request line (a TLS ClientHello's 0x16, random binary, `PRI * HTTP/2.0`
 *   at the `2`).
 * - `ERR_HTTP_BAD_HEADER` for a malformed field line (no colon, whitespace
 *   before the colon, obs-fold, bare LF, CR not followed by LF, a CTL in a value).
 * - `ERR_HTTP_HEAD_TOO_LARGE` when `maxBytes` bytes were seen without the end
 *   of the head and without an earlier error.
 *
 * Bytes at or beyond `offset + maxBytes` are never looked at, so the result for
 * a stream is the same however it is split. Work is linear in the bytes given.
 * @throws RangeError for an offset outside the buffer or a maxBytes below 1
 *   (programmer errors).
 */
export function parseRequestHead(
  buf: Buffer,
  offset: number,
  maxBytes: number,
): ParseResult<RequestHead> {
  checkArguments(buf, offset, maxBytes);
  const available = buf.length - offset;
  // Running out of bytes at `limit` means "need more" unless the limit is maxBytes.
  const atCap = available >= maxBytes;
  const limit = atCap ? offset + maxBytes : buf.length;
  const outOfBytes = atCap ? TOO_LARGE : NEED_MORE;

  let pos = offset;

  // Empty lines before the request line (RFC 9112 2.2).
  for (;;) {
    if (pos === limit) return outOfBytes;
    const c = buf[pos] as number;
    if (c === LF) {
      pos++;
    } else if (c === CR) {
      if (pos + 1 === limit) return outOfBytes;
      if (buf[pos + 1] !== LF) return NOT_HTTP;
      pos += 2;
    } else {
      break;
    }
  }

  // method SP
  const methodStart = pos;
  while (pos < limit && ((CLASS[buf[pos] as number] as number) & TCHAR) !== 0) {
    if (pos - methodStart === MAX_METHOD_BYTES) return NOT_HTTP;
    pos++;
  }
  if (pos === limit) return outOfBytes;
  if (pos === methodStart || buf[pos] !== SP) return NOT_HTTP;
  const methodEnd = pos++;

  // request-target SP
  const targetStart = pos;
  const words = wordsOf(buf);
  pos = scanTarget(buf, words, pos, limit);
  if (pos === limit) return outOfBytes;
  if (pos === targetStart || buf[pos] !== SP) return NOT_HTTP;
  const targetEnd = pos++;

  // HTTP-version CRLF: "HTTP/1." then "0" or "1". Checked byte by byte so that
  // "HTTP/2.0" (the h2 prior-knowledge preface) fails at the "2".
  for (let i = 0; i < HTTP_VERSION_PREFIX.length; i++, pos++) {
    if (pos === limit) return outOfBytes;
    if (buf[pos] !== HTTP_VERSION_PREFIX[i]) return NOT_HTTP;
  }
  if (pos === limit) return outOfBytes;
  const minor = buf[pos++];
  if (minor !== 0x30 && minor !== 0x31) return NOT_HTTP;
  if (pos === limit) return outOfBytes;
  if (buf[pos++] !== CR) return NOT_HTTP;
  if (pos === limit) return outOfBytes;
  if (buf[pos++] !== LF) return NOT_HTTP;

  // Kept fields are recorded as (field, start, end) and decoded once at the end.
  let kept = 0;
  let keptEnd = targetEnd;
  let hostSeen = false;
  let upgradeSeen = false;

  // *( field-line CRLF ) CRLF
  for (;;) {
    if (pos === limit) return outOfBytes;
    if (buf[pos] === CR) {
      if (pos + 1 === limit) return outOfBytes;
      if (buf[pos + 1] !== LF) return BAD_HEADER;
      pos += 2;
      break;
    }

    // field-name ":" — no whitespace before the colon (RFC 9112 5.1), and a
    // line starting with whitespace is obs-fold (5.2): both refused.
    const nameStart = pos;
    while (pos < limit && ((CLASS[buf[pos] as number] as number) & TCHAR) !== 0) pos++;
    if (pos === limit) return outOfBytes;
    if (pos === nameStart || buf[pos] !== COLON) return BAD_HEADER;
    const nameLength = pos - nameStart;
    pos++;

    // OWS field-value OWS CRLF
    while (pos < limit && (buf[pos] === SP || buf[pos] === HTAB)) pos++;
    const valueStart = pos;
    pos = scanFieldValue(buf, words, pos, limit);
    if (pos === limit) return outOfBytes;
    if (buf[pos] !== CR) return BAD_HEADER; // a CTL, or a bare LF
    if (pos + 1 === limit) return outOfBytes;
    if (buf[pos + 1] !== LF) return BAD_HEADER;
    let valueEnd = pos;
    pos += 2;

    // Only five names matter; the length decides which one to compare.
    let field = 0;
    switch (nameLength) {
      case 4:
        if (!hostSeen && nameEquals(buf, nameStart, NAME_HOST)) {
          field = FIELD_HOST;
          hostSeen = true;
        }
        break;
      case 6:
        if (nameEquals(buf, nameStart, NAME_COOKIE)) field = FIELD_COOKIE;
        break;
      case 7:
        if (!upgradeSeen && nameEquals(buf, nameStart, NAME_UPGRADE)) {
          field = FIELD_UPGRADE;
          upgradeSeen = true;
        }
        break;
      case 9:
        if (nameEquals(buf, nameStart, NAME_FORWARDED)) field = FIELD_FORWARDED;
        break;
      case 15:
        if (nameEquals(buf, nameStart, NAME_X_FORWARDED_FOR)) field = FIELD_X_FORWARDED_FOR;
        break;
    }
    if (field === 0) continue;

    while (valueEnd > valueStart && (buf[valueEnd - 1] === SP || buf[valueEnd - 1] === HTAB)) {
      valueEnd--;
    }
    if (kept * 3 + 3 > keptFields.length) keptFields = growKept(keptFields);
    keptFields[kept * 3] = field;
    keptFields[kept * 3 + 1] = valueStart - methodStart;
    keptFields[kept * 3 + 2] = valueEnd - methodStart;
    kept++;
    keptEnd = valueEnd;
  }

  // One decode for the request line and every kept value; slices share it.
  const text = latin1(buf, methodStart, keptEnd);
  let host: string | undefined;
  let cookie: string | undefined;
  let upgrade: string | undefined;
  let forwardedFor: string[] | undefined;
  let forwarded: string[] | undefined;
  for (let i = 0; i < kept * 3; i += 3) {
    const value = text.slice(keptFields[i + 1], keptFields[i + 2]);
    switch (keptFields[i]) {
      case FIELD_HOST:
        host = value;
        break;
      case FIELD_COOKIE:
        // Several Cookie lines are one list joined with "; " (RFC 9113 8.2.3).
        cookie = cookie === undefined ? value : `${cookie}; ${value}`;
        break;
      case FIELD_UPGRADE:
        upgrade = value;
        break;
      case FIELD_FORWARDED:
        (forwarded ??= []).push(value);
        break;
      default:
        (forwardedFor ??= []).push(value);
        break;
    }
  }

  const minorVersion: '1.0' | '1.1' = minor === 0x31 ? '1.1' : '1.0';
  const head: RequestHead = {
    method: methodString(text, methodEnd - methodStart),
    target: text.slice(targetStart - methodStart, targetEnd - methodStart),
    version: minorVersion,
    host,
    cookie,
    forwardedFor: forwardedFor ?? NO_VALUES,
    forwarded: forwarded ?? NO_VALUES,
    upgrade,
  };
  return { kind: 'done', value: head, consumed: pos - offset };
}
