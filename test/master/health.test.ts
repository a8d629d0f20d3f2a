import t from 'tap';
import { healthResponse, isHealthCheck } from '../../src/master/health.js';

t.test('the health check is GET or HEAD of exactly the path, a query string allowed', async (t) => {
  const table = [
    { method: 'GET', target: '/healthz', yes: true },
    { method: 'HEAD', target: '/healthz', yes: true },
    { method: 'GET', target: '/healthz?from=nlb', yes: true },
    { method: 'POST', target: '/healthz', yes: false },
    { method: 'GET', target: '/healthz/x', yes: false },
    { method: 'GET', target: '/healthzz', yes: false },
    { method: 'GET', target: '/health', yes: false },
    { method: 'GET', target: '/', yes: false },
  ];
  for (const row of table) t.equal(isHealthCheck(row.method, row.target, '/healthz'), row.yes, `${row.method} ${row.target}`);
});

t.test('200 with the ready count; 503 with none ready, or stopping; HEAD without a body', async (t) => {
  const parse = (bytes: Buffer) => {
    const text = bytes.toString('latin1');
    const [head, body] = text.split('\r\n\r\n') as [string, string];
    return { status: Number(head.split(' ')[1]), length: Number(/content-length: (\d+)/.exec(head)?.[1]), close: /connection: close/.test(head), body };
  };
  const ok = parse(healthResponse(2, false, false));
  t.same({ status: ok.status, close: ok.close, body: JSON.parse(ok.body) }, { status: 200, close: true, body: { status: 'ok', workers: 2 } });
  t.equal(ok.length, Buffer.byteLength(ok.body));
  t.same(JSON.parse(parse(healthResponse(0, false, false)).body), { status: 'unavailable', workers: 0 });
  t.equal(parse(healthResponse(0, false, false)).status, 503);
  const stopping = parse(healthResponse(3, true, false));
  t.same({ status: stopping.status, body: JSON.parse(stopping.body) }, { status: 503, body: { status: 'stopping', workers: 3 } });
  const head = parse(healthResponse(2, false, true));
  t.equal(head.body, '', 'HEAD: the head only');
  t.equal(head.length, ok.length, 'with the length the GET body has');
});
