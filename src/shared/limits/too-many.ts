/** The answer to a client over its limit (RFC 6585 4): nothing from the request is reflected. */
export function tooManyRequestsBytes(retryAfterSeconds: number): Buffer {
  const body = '429 Too Many Requests\n';
  return Buffer.from(
    `HTTP/1.1 429 Too Many Requests\r\nretry-after: ${retryAfterSeconds}\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
    'latin1',
  );
}
