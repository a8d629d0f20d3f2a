import t from 'tap';
import { TOO_MANY_REQUESTS_BODY, tooManyRequestsBytes, tooManyRequestsHeaders } from '../../../src/shared/limits/too-many.js';

t.test("the master's 429 and the worker's carry the same fields and body; the master's closes", async (t) => {
  const text = tooManyRequestsBytes(7).toString('latin1');
  t.equal(
    text,
    'HTTP/1.1 429 Too Many Requests\r\nretry-after: 7\r\ncontent-type: text/plain\r\ncontent-length: 22\r\nconnection: close\r\n\r\n429 Too Many Requests\n',
  );
  t.same(tooManyRequestsHeaders(7), { 'retry-after': '7', 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(TOO_MANY_REQUESTS_BODY)) });
});
