import t from 'tap';
import { refusalBytes, refusalHeaders } from '../../../src/shared/inspect/response.js';
import { compileInspector } from '../../../src/shared/inspect/rules.js';

const inspect = compileInspector({ methods: ['GET', 'HEAD'], hosts: ['example.com'], paths: { allow: ['^/api'] }, maxUrlBytes: 100 });
const refusals = {
  404: inspect('GET', '/<script>alert(1)</script>', 'example.com'),
  405: inspect('PROPFIND', '/api', 'example.com'),
  414: inspect('GET', `/${'x'.repeat(200)}`, 'example.com'),
  421: inspect('GET', '/api', 'evil.test'),
};

function parse(bytes: Buffer): { statusLine: string; fields: Map<string, string>; body: string } {
  const text = bytes.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const fields = new Map(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
  return { statusLine: statusLine as string, fields, body: text.slice(end + 4) };
}

t.test('status line, Content-Length, Connection: close; Allow only on 405', async (t) => {
  for (const [status, reason] of [
    [404, 'Not Found'],
    [405, 'Method Not Allowed'],
    [414, 'URI Too Long'],
    [421, 'Misdirected Request'],
  ] as const) {
    const refusal = refusals[status];
    if (refusal === null) throw new Error(`fixture for ${status} is allowed`);
    const { statusLine, fields, body } = parse(refusalBytes(refusal, false));
    t.equal(statusLine, `HTTP/1.1 ${status} ${reason}`);
    t.equal(fields.get('connection'), 'close');
    t.equal(Number(fields.get('content-length')), Buffer.byteLength(body), 'Content-Length is the body');
    t.equal(fields.get('allow'), status === 405 ? 'GET, HEAD' : undefined, 'Allow');
    t.same(refusalHeaders(refusal), Object.fromEntries(fields), 'the worker writes the same fields');
    const head = parse(refusalBytes(refusal, true));
    t.equal(head.body, '', 'no body after a HEAD');
    t.equal(head.fields.get('content-length'), fields.get('content-length'), 'same Content-Length for HEAD');
  }
});

t.test('nothing from the request is reflected', async (t) => {
  const bytes = refusalBytes(refusals[404]!, false).toString('latin1');
  t.notMatch(bytes, /script|alert|example\.com/);
});
