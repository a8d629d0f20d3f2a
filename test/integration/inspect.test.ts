import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { encodeProxyV1 } from '../../src/shared/protocol/proxy.js';
import { MASTER, ROOT, admin, connect, exchange, parseResponse, readResponse, startBalancer, writeConfig, type RawResponse } from '../helpers/balancer.js';
import { scannerRequests } from '../helpers/scanner-log.js';

t.setTimeout(180_000);

/** A test app that counts the requests it sees (test/fixtures/counting-app.js). */
const COUNTING_APP = join(ROOT, 'test', 'fixtures', 'counting-app.js');
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];


/** A PROXY v1 header naming `client` as the source (the balancer trusts 127.0.0.1 by default). */
function proxyFrom(client: string): Buffer {
  return encodeProxyV1({ family: 'TCP4', source: { address: client, port: 40000 }, destination: { address: '192.0.2.1', port: 443 } });
}

/** One request behind a PROXY header on a fresh connection; the whole answer up to the close. */
async function send(port: number, client: string, requestHead: string): Promise<RawResponse> {
  const bytes = await exchange(port, Buffer.concat([proxyFrom(client), Buffer.from(requestHead, 'latin1')]));
  const response = parseResponse(bytes);
  if (response === null) throw new Error(`no complete response: ${JSON.stringify(bytes.toString('latin1').slice(0, 200))}`);
  t.equal(response.consumed, bytes.length, 'nothing after the answer');
  return response;
}

/** The counting app's answer on a fresh connection (served, 200). */
async function appCount(port: number, client: string, path: string): Promise<number> {
  const response = await send(port, client, `GET ${path} HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n`);
  if (response.status !== 200) throw new Error(`GET ${path}: status ${response.status}`);
  const answer = JSON.parse(response.body.toString()) as { requests: number; url: string };
  t.equal(answer.url, path, `${path} reached the app`);
  return answer.requests;
}

/** The sum of a family's samples whose labels include `labels` (worker series carry a `worker` label too). */
function metricValue(text: string, name: string, labels: string): number {
  const lines = text.split('\n').filter((l) => l.startsWith(`${name}{`) && (l.includes(`{${labels},`) || l.includes(`,${labels},`) || l.includes(`{${labels}}`) || l.includes(`,${labels}}`)));
  return lines.reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

t.test('edge inspection: the master refuses, the worker refuses later requests, the app sees neither', async (t) => {
  const balancer = await startBalancer({
    workers: { count: 1, app: COUNTING_APP },
    inspect: { methods: METHODS, hosts: ['example.com', '*.example.com'], paths: { allow: ['^/api(/|$)'] }, maxUrlBytes: 2048 },
    accessLog: true,
  });
  t.teardown(() => balancer.stop());
  const port = balancer.port;
  const refusedLines = (client: string): Array<Record<string, unknown>> => balancer.logs.filter((l) => l.msg === 'request refused' && l.client === client);

  const before = await appCount(port, '198.51.100.1', '/api/x');

  // Every scanner request line: 404 from the master.
  const scanners = scannerRequests();
  t.equal(scanners.length, 15);
  for (const [i, { method, target }] of scanners.entries()) {
    const response = await send(port, `203.0.113.${i + 1}`, `${method} ${target} HTTP/1.1\r\nHost: example.com\r\nUser-Agent: ZmEu\r\n\r\n`);
    t.equal(response.status, 404, `404 for ${target.slice(0, 50)}`);
    t.equal(response.fields.get('connection'), 'close');
    t.equal(response.body.toString(), '404 Not Found\n', 'the small answer, nothing reflected');
  }
  t.equal(await appCount(port, '198.51.100.1', '/api/y'), before + 1, 'the app saw /api/y and none of the 15 scanner requests');

  // 405 with Allow, 414, 421.
  const propfind = await send(port, '192.0.2.45', 'PROPFIND /api HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n');
  t.equal(propfind.status, 405);
  t.equal(propfind.fields.get('allow'), METHODS.join(', '), '405 names the allowed methods');
  const long = await send(port, '192.0.2.14', `GET /api/${'a'.repeat(3000 - 5)} HTTP/1.1\r\nHost: example.com\r\n\r\n`);
  t.equal(long.status, 414, 'a 3000-byte URL');
  const misdirected = await send(port, '192.0.2.21', 'GET /api/x HTTP/1.1\r\nHost: www.other-site.test\r\n\r\n');
  t.equal(misdirected.status, 421, 'a wrong Host');
  t.equal(await appCount(port, '198.51.100.1', '/api/z'), before + 2, 'nor any of these');

  // One keep-alive connection: /api/a is served, /phpmyadmin/ is refused by the worker runtime.
  const socket = await connect(port);
  socket.write(Buffer.concat([proxyFrom('192.0.2.99'), Buffer.from('GET /api/a HTTP/1.1\r\nHost: example.com\r\n\r\n')]));
  const served = await readResponse(socket);
  t.equal(served.status, 200);
  t.equal((JSON.parse(served.body.toString()) as { requests: number }).requests, before + 3, '/api/a reached the app');
  socket.write('GET /phpmyadmin/ HTTP/1.1\r\nHost: example.com\r\n\r\n');
  const refused = await readResponse(socket);
  t.equal(refused.status, 404, 'the second request on the connection: 404');
  t.equal(refused.fields.get('connection'), 'close');
  t.equal(refused.body.toString(), '404 Not Found\n');
  await new Promise((done) => (socket.destroyed ? done(null) : socket.once('close', done)));
  t.equal(await appCount(port, '198.51.100.1', '/api/after'), before + 4, 'the app never saw /phpmyadmin/');

  // One log line per refusal, with the PROXY header's client address.
  for (const [client, rule, status, where, method, path] of [
    ['192.0.2.45', 'method', 405, 'master', 'PROPFIND', '/api'],
    ['192.0.2.21', 'host', 421, 'master', 'GET', '/api/x'],
    ['192.0.2.99', 'path-allow', 404, 'worker', 'GET', '/phpmyadmin/'],
  ] as const) {
    const line = await balancer.waitForLog((l) => l.msg === 'request refused' && l.client === client);
    t.match(line, { rule, status, where, method, path, level: 'warn' }, `${rule}: logged with the real client`);
    t.equal(refusedLines(client).length, 1, `${rule}: one line`);
  }
  const longLine = await balancer.waitForLog((l) => l.msg === 'request refused' && l.client === '192.0.2.14');
  t.match(longLine, { rule: 'url-length', status: 414 });
  t.ok((longLine.path as string).length <= 201 && (longLine.path as string).endsWith('…'), 'the path is truncated in the log');
  // The scanner burst goes through the rate limiter (10 lines per rule per second):
  // at least those are logged, each once and with its own client; the metrics are exact.
  await balancer.waitForLog((l) => l.msg === 'request refused' && l.client === '203.0.113.1');
  const scannerLines = scanners.map((_, i) => refusedLines(`203.0.113.${i + 1}`));
  t.ok(scannerLines.filter((lines) => lines.length === 1).length >= 10, 'the scanner refusals are logged (rate-limited)');
  t.ok(scannerLines.every((lines) => lines.length <= 1), 'never twice');
  for (const [i, lines] of scannerLines.entries()) {
    if (lines[0]) t.match(lines[0], { rule: 'path-allow', status: 404, where: 'master', method: 'GET' }, `scanner ${i + 1}`);
  }

  // The access log: requests the worker saw (refused ones too), none the master refused.
  const access = await balancer.waitForLog((l) => l.msg === 'request' && l.client === '192.0.2.99' && l.status === 404);
  t.match(access, { method: 'GET', url: '/phpmyadmin/', worker: 0 });
  t.type(access.ms, 'number');
  t.match(await balancer.waitForLog((l) => l.msg === 'request' && l.url === '/api/a'), { client: '192.0.2.99', status: 200, method: 'GET' });
  t.notOk(balancer.logs.some((l) => l.msg === 'request' && (l.client as string).startsWith('203.0.113.')), 'no access line for a request the master refused');

  // Exact counts by rule on the admin port.
  const metrics = (await admin(balancer.adminPort!, '/metrics')).body.toString();
  t.equal(metricValue(metrics, 'sticky_rejected_requests_total', 'rule="path-allow",where="master"'), 15);
  t.equal(metricValue(metrics, 'sticky_rejected_requests_total', 'rule="method",where="master"'), 1);
  t.equal(metricValue(metrics, 'sticky_rejected_requests_total', 'rule="url-length",where="master"'), 1);
  t.equal(metricValue(metrics, 'sticky_rejected_requests_total', 'rule="host",where="master"'), 1);
  t.equal(metricValue(metrics, 'sticky_worker_rejected_requests_total', 'rule="path-allow"'), 1, 'the worker-side refusal, summed over workers');
});

t.test('a bad path pattern is a config error naming its path', async (t) => {
  const config = writeConfig({ inspect: { paths: { deny: ['\\.php$', '(unclosed'] } } });
  const result = spawnSync(process.execPath, [MASTER, '--config', config], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  t.equal(result.status, 2);
  t.match(result.stderr.trim(), /^sticky-session-ts: \S*config\.json: inspect\.paths\.deny\.1: invalid regular expression \(.+\), got "\(unclosed"$/);
});
