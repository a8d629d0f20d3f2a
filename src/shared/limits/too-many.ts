/** The body of a 429 (RFC 6585 4), in the master's answer and the worker's alike: nothing from the request is reflected. */
export const TOO_MANY_REQUESTS_BODY = '429 Too Many Requests\n';

/** The fields of a 429 besides the status line. */
export function tooManyRequestsHeaders(retryAfterSeconds: number): Record<string, string> {
  return { 'retry-after': String(retryAfterSeconds), 'content-type': 'text/plain', 'content-length': String(TOO_MANY_REQUESTS_BODY.length) };
}

/** The master's whole answer to a connection over its client's limit (it closes after). */
export function tooManyRequestsBytes(retryAfterSeconds: number): Buffer {
  const fields = Object.entries(tooManyRequestsHeaders(retryAfterSeconds))
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  return Buffer.from(`HTTP/1.1 429 Too Many Requests\r\n${fields}connection: close\r\n\r\n${TOO_MANY_REQUESTS_BODY}`, 'latin1');
}
