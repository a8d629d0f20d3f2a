/**
 * The tiny HTTP answer to a refused request. Nothing from the request is
 * reflected (no target, no Host): a refusal must not become a reflection or
 * log-injection vector. `Connection: close` because the sender is not one we
 * want to keep talking to, and it spares reading a body we do not want.
 */
import type { Refusal } from './rules.js';

/** Reason phrases (RFC 9110 15). */
export const REASON: Readonly<Record<Refusal['status'], string>> = Object.freeze({
  404: 'Not Found',
  405: 'Method Not Allowed',
  414: 'URI Too Long',
  421: 'Misdirected Request',
});

/** The body of a refusal: the status line's text, nothing from the request. */
export function refusalBody(refusal: Refusal): string {
  return `${refusal.status} ${REASON[refusal.status]}\n`;
}

/** The header fields of a refusal (the worker runtime writes them through `res`). */
export function refusalHeaders(refusal: Refusal): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': 'text/plain',
    'content-length': String(Buffer.byteLength(refusalBody(refusal))),
    connection: 'close',
  };
  if (refusal.allow !== undefined) headers.allow = refusal.allow;
  return headers;
}

const cache = new WeakMap<Refusal, { full: Buffer; headOnly: Buffer }>();

/**
 * The whole response as bytes, for the master to write on the raw socket.
 * `forHead`: the request was HEAD, so the same fields and no body (RFC 9110 9.3.2).
 * Built once per refusal object (an {@link Inspector} returns the same ones).
 */
export function refusalBytes(refusal: Refusal, forHead: boolean): Buffer {
  let bytes = cache.get(refusal);
  if (bytes === undefined) {
    let head = `HTTP/1.1 ${refusal.status} ${REASON[refusal.status]}\r\n`;
    for (const [name, value] of Object.entries(refusalHeaders(refusal))) head += `${name}: ${value}\r\n`;
    head += '\r\n';
    bytes = { full: Buffer.from(head + refusalBody(refusal), 'latin1'), headOnly: Buffer.from(head, 'latin1') };
    cache.set(refusal, bytes);
  }
  return forHead ? bytes.headOnly : bytes.full;
}
