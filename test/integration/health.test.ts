import t from 'tap';
import { healthResponse, isHealthCheck } from '../../src/master/health.js';
import { encodeProxyV2 } from '../../src/shared/protocol/proxy-v2.js';
import { connect, readAll, request, startBalancer } from '../helpers/balancer.js';

/** Sends `bytes` on a new connection and reads the answer to its end. */
async function exchange(port: number, bytes: Buffer): Promise<string> {
  const socket = await connect(port);
  socket.write(bytes);
  return (await readAll(socket)).toString('latin1');
}

const head = (method: string, target: string): Buffer => Buffer.from(`${method} ${target} HTTP/1.1\r\nHost: 10.0.3.7:8080\r\nUser-Agent: ELB-HealthChecker/2.0\r\n\r\n`);
/** An NLB health check with proxy protocol v2 on: a header without the client's addresses (LOCAL), then the check. */
const LOCAL = encodeProxyV2({ command: 'LOCAL', family: 'UNKNOWN' });
const PROXIED = encodeProxyV2({ family: 'TCP4', source: { address: '10.0.3.9', port: 41000 }, destination: { address: '10.0.3.7', port: 8080 } });

function status(answer: string): number {
  return Number(/^HTTP\/1\.1 (\d{3}) /.exec(answer)?.[1]);
}

t.test('health.path on the traffic port, with proxyProtocol required, as an NLB checks it; 503 during the SIGTERM grace', async (t) => {
  const balancer = await startBalancer({
    workers: { count: 2 },
    proxyProtocol: { mode: 'required', trustedFrom: ['127.0.0.0/8'] },
    health: { path: '/healthz', graceMs: 4000 },
  });
  t.teardown(() => balancer.stop());
  for (const [name, header] of [['v2 LOCAL (no client addresses)', LOCAL], ['v2 PROXY', PROXIED]] as const) {
    const answer = await exchange(balancer.port, Buffer.concat([header, head('GET', '/healthz')]));
    t.equal(status(answer), 200, `${name}: 200`);
    t.match(answer, /\r\nconnection: close\r\n/i);
    t.same(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)), { status: 'ok', workers: 2 }, `${name}: the ready workers`);
  }
  const headOnly = await exchange(balancer.port, Buffer.concat([LOCAL, head('HEAD', '/healthz')]));
  t.equal(status(headOnly), 200, 'HEAD: 200');
  t.ok(headOnly.endsWith('\r\n\r\n'), 'HEAD: no body');
  t.equal(status(await exchange(balancer.port, Buffer.concat([LOCAL, head('GET', '/healthz?probe=1')]))), 200, 'a query string is the same check');
  const app = await exchange(balancer.port, Buffer.concat([PROXIED, head('GET', '/healthzx')]));
  t.match(app, /"worker":[01]/, 'any other path is the app\'s');
  t.equal(await exchange(balancer.port, head('GET', '/healthz')), '', 'required mode: no header, no answer (closed without a byte)');

  // SIGTERM: the check fails at once while the app still serves, for graceMs.
  balancer.proc.kill('SIGTERM');
  await balancer.waitForLog((line) => line.msg === 'stopping: health check failing, still serving');
  const stopping = await exchange(balancer.port, Buffer.concat([LOCAL, head('GET', '/healthz')]));
  t.equal(status(stopping), 503, 'stopping: 503');
  t.same(JSON.parse(stopping.slice(stopping.indexOf('\r\n\r\n') + 4)), { status: 'stopping', workers: 2 });
  const served = await exchange(balancer.port, Buffer.concat([PROXIED, head('GET', '/')]));
  t.match(served, /^HTTP\/1\.1 200 .*"clientIp":"10\.0\.3\.9"/s, 'the app still serves during the grace');
  t.equal(await balancer.exited, 0, 'then exits 0');
});

t.test('without health, the path is the app\'s like any other', async (t) => {
  const balancer = await startBalancer({ workers: { count: 1 } });
  t.teardown(() => balancer.stop());
  const answer = await request(balancer.port, { path: '/healthz' });
  t.equal(answer.status, 200);
  t.match(JSON.parse(answer.body.toString()), { worker: 0 });
});

t.test('the health check answer and its matching', async (t) => {
  t.ok(isHealthCheck('GET', '/healthz', '/healthz'));
  t.ok(isHealthCheck('HEAD', '/healthz?x', '/healthz'));
  t.notOk(isHealthCheck('POST', '/healthz', '/healthz'), 'only GET and HEAD');
  t.notOk(isHealthCheck('GET', '/healthz/', '/healthz'));
  t.notOk(isHealthCheck('get', '/healthz', '/healthz'), 'methods are case-sensitive');
  t.match(healthResponse(0, false, false).toString(), /^HTTP\/1\.1 503 [^]*"status":"unavailable","workers":0/, 'no ready worker: 503');
  t.match(healthResponse(3, false, false).toString(), /^HTTP\/1\.1 200 [^]*"status":"ok","workers":3/);
});
