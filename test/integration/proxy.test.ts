import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { startHaproxy } from '../helpers/haproxy.js';
import { encodeProxyV1, encodeProxyV2 } from '../../src/shared/protocol/proxy.js';
import {
  ROOT,
  admin,
  connectFrom,
  exchange,
  pollUntil,
  processStats,
  readAll,
  startBalancer,
  which,
  writeSplit,
} from '../helpers/balancer.js';

t.setTimeout(180_000);

const INFO_APP = join(ROOT, 'test', 'fixtures', 'info-app.js');
const GET = 'GET /who HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n';

interface InfoAnswer {
  pid: number;
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  info: { key: string; keySource: string; worker: number; proxy: { source: { address: string; port: number } | null; destination: unknown; tlvs: Record<string, unknown> } | null };
}

function parseAnswer(bytes: Buffer): InfoAnswer {
  const text = bytes.toString('latin1');
  if (!text.startsWith('HTTP/1.1 200')) throw new Error(`unexpected answer: ${JSON.stringify(text.slice(0, 200))}`);
  return JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as InfoAnswer;
}

t.test('a trusted PROXY v1 header: the app sees the client, the key is its address', async (t) => {
  const balancer = await startBalancer({ workers: { count: 2, app: INFO_APP } });
  t.teardown(() => balancer.stop());
  const header = 'PROXY TCP4 198.51.100.22 203.0.113.7 35646 80\r\n';
  const answer = parseAnswer(await exchange(balancer.port, header + GET));
  t.equal(answer.remoteAddress, '198.51.100.22', 'clientIp is the PROXY source');
  t.equal(answer.remotePort, 35646, 'clientPort is the PROXY source port');
  t.equal(answer.localAddress, '203.0.113.7', 'localAddress is the PROXY destination');
  t.equal(answer.localPort, 80);
  t.equal(answer.info.keySource, 'proxy');
  t.equal(answer.info.key, '198.51.100.22');

  // The same header split into many TCP segments (HAProxy 2.6 and nginx 1.22 drop these; we must not).
  const socket = await connectFrom(balancer.port, '127.0.0.1');
  const response = readAll(socket);
  const bytes = Buffer.from(header + GET);
  await writeSplit(socket, bytes, [1, 2, 5, 6, 11, 30, 47, 48, 60]);
  const split = parseAnswer(await response);
  t.equal(split.remoteAddress, '198.51.100.22', 'a header split across segments is honoured');
  t.equal(split.pid, answer.pid, 'and lands on the same worker');

  // The demo app's own view of the connection.
  const demo = await startBalancer();
  t.teardown(() => demo.stop());
  const text = (await exchange(demo.port, header + GET)).toString();
  const json = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
  t.match(json, { clientIp: '198.51.100.22', clientPort: 35646, keySource: 'proxy', key: '198.51.100.22' });
});

t.test('PROXY v2 with TLVs reaches the app; LOCAL uses the real peer', async (t) => {
  const balancer = await startBalancer({ workers: { count: 2, app: INFO_APP } });
  t.teardown(() => balancer.stop());
  const v2 = encodeProxyV2({
    family: 'TCP6',
    source: { address: '2001:db8::22', port: 40000 },
    destination: { address: '2001:db8::1', port: 443 },
    tlvs: { awsVpceId: 'vpce-08d2bf15fac5001c9', authority: 'example.com', uniqueId: Buffer.from('abc123'), crc32c: 0 },
  });
  const answer = parseAnswer(await exchange(balancer.port, Buffer.concat([v2, Buffer.from(GET)])));
  t.equal(answer.remoteAddress, '2001:db8::22');
  t.equal(answer.remotePort, 40000);
  t.equal(answer.info.keySource, 'proxy');
  t.equal(answer.info.proxy?.tlvs.awsVpceId, 'vpce-08d2bf15fac5001c9', 'the VPC endpoint id TLV');
  t.equal(answer.info.proxy?.tlvs.authority, 'example.com');
  t.equal(answer.info.proxy?.tlvs.uniqueId, Buffer.from('abc123').toString('hex'));

  const local = encodeProxyV2({ command: 'LOCAL', family: 'UNKNOWN' });
  const health = parseAnswer(await exchange(balancer.port, Buffer.concat([local, Buffer.from(GET)])));
  t.equal(health.remoteAddress, '127.0.0.1', 'LOCAL: the app sees the real peer');
  t.equal(health.info.keySource, 'remote', 'LOCAL yields no proxy key');

  const unknown = parseAnswer(await exchange(balancer.port, 'PROXY UNKNOWN\r\n' + GET));
  t.equal(unknown.info.keySource, 'remote', 'UNKNOWN yields no proxy key');
  t.same(unknown.info.proxy?.source ?? null, null);

  // Only the first header counts: a second one is application data (the app gets it).
  const twice = (await exchange(balancer.port, 'PROXY TCP4 198.51.100.1 203.0.113.7 1 80\r\nPROXY TCP4 198.51.100.2 203.0.113.7 2 80\r\n' + GET)).toString();
  t.match(twice, /^HTTP\/1\.1 400/, 'a second PROXY line reaches the app as (bad) HTTP');
});

t.test('untrusted or malformed headers are closed without a byte, logged once and counted', async (t) => {
  const balancer = await startBalancer({
    workers: { count: 2, app: INFO_APP },
    proxyProtocol: { mode: 'optional', trustedFrom: ['127.0.0.1/32'] },
  });
  t.teardown(() => balancer.stop());
  const header = 'PROXY TCP4 198.51.100.22 203.0.113.7 35646 80\r\n';
  const untrusted = await exchange(balancer.port, header + GET, '127.0.0.2');
  t.equal(untrusted.length, 0, 'the untrusted peer gets no byte, only the close');
  const line = await balancer.waitForLog((l) => l.msg === 'connection refused' && l.reason === 'ERR_PROXY_UNTRUSTED');
  t.equal(line.client, '127.0.0.2', 'the log line names the peer');

  const plain = parseAnswer(await exchange(balancer.port, GET, '127.0.0.2'));
  t.equal(plain.info.keySource, 'remote', 'optional mode: an untrusted peer without a header is served');
  t.equal(plain.remoteAddress, '127.0.0.2');

  const malformed: Array<{ name: string; bytes: Buffer | string; code: string }> = [
    { name: 'v1 bad family', bytes: 'PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n' + GET, code: 'ERR_PROXY_V1_BAD_SYNTAX' },
    { name: 'v1 leading zero', bytes: 'PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n' + GET, code: 'ERR_PROXY_V1_BAD_ADDRESS' },
    { name: 'v1 bad port', bytes: 'PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n' + GET, code: 'ERR_PROXY_V1_BAD_PORT' },
    { name: 'v1 too long', bytes: 'PROXY UNKNOWN ' + 'x'.repeat(120), code: 'ERR_PROXY_V1_TOO_LONG' },
    { name: 'v2 bad version', bytes: Buffer.concat([Buffer.from('0d0a0d0a000d0a515549540a', 'hex'), Buffer.from([0x31, 0x11, 0, 12])]), code: 'ERR_PROXY_V2_BAD_VERSION' },
  ];
  const before = processStats(balancer.proc.pid!);
  for (const c of malformed) {
    const answer = await exchange(balancer.port, c.bytes);
    t.equal(answer.length, 0, `${c.name}: closed without a byte`);
  }
  const metrics = (await admin(balancer.adminPort!, '/metrics')).body.toString();
  for (const c of malformed) {
    t.match(metrics, new RegExp(`sticky_refused_connections_total\\{reason="${c.code}"\\} 1\\b`), `${c.name}: counted as ${c.code}`);
  }

  // Many refused connections: descriptors and memory must not grow with them.
  for (let round = 0; round < 10; round++) {
    await Promise.all(Array.from({ length: 50 }, (_, i) => exchange(balancer.port, i % 2 ? header + GET : 'PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n', i % 2 ? '127.0.0.3' : '127.0.0.1')));
  }
  const after = await pollUntil(() => {
    const stats = processStats(balancer.proc.pid!);
    return stats.fds <= before.fds ? stats : undefined;
  });
  t.ok(after.fds <= before.fds, `descriptors back to ${before.fds} (now ${after.fds})`);
  t.ok(after.rssBytes < 200 * 1024 * 1024, `master RSS ${Math.round(after.rssBytes / 1048576)} MB`);
  const refusedLines = balancer.logs.filter((l) => l.msg === 'connection refused').length;
  t.ok(refusedLines < 500, `refusal logs are rate-limited (${refusedLines} lines for 506 refusals)`);
  const counted = (await admin(balancer.adminPort!, '/metrics')).body.toString();
  const total = [...counted.matchAll(/^sticky_refused_connections_total\{[^}]*\} (\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
  t.equal(total, 506, 'every refusal is counted exactly');
});

t.test('mode required: no header, or an untrusted peer, is closed without a byte', async (t) => {
  const balancer = await startBalancer({
    workers: { count: 1, app: INFO_APP },
    proxyProtocol: { mode: 'required', trustedFrom: ['127.0.0.1/32'] },
  });
  t.teardown(() => balancer.stop());
  t.equal((await exchange(balancer.port, GET)).length, 0, 'no header: closed');
  t.equal((await exchange(balancer.port, 'PROXY TCP4 198.51.100.22 203.0.113.7 1 80\r\n' + GET, '127.0.0.2')).length, 0, 'untrusted: closed');
  const answer = parseAnswer(await exchange(balancer.port, encodeProxyV1({ family: 'TCP4', source: { address: '198.51.100.22', port: 1 }, destination: { address: '203.0.113.7', port: 80 } }).toString() + GET));
  t.equal(answer.remoteAddress, '198.51.100.22', 'a trusted header is served');
  await balancer.waitForLog((l) => l.reason === 'ERR_PROXY_REQUIRED');
});

t.test('mode off: a PROXY line is application data', async (t) => {
  const balancer = await startBalancer({ workers: { count: 1, app: INFO_APP }, proxyProtocol: { mode: 'off', trustedFrom: [] } });
  t.teardown(() => balancer.stop());
  const text = (await exchange(balancer.port, 'PROXY TCP4 198.51.100.22 203.0.113.7 1 80\r\n' + GET)).toString();
  t.match(text, /^HTTP\/1\.1 400/, 'the app sees the PROXY line and refuses it as HTTP');
});

t.test('interop: curl --haproxy-protocol', { skip: which('curl') ? false : 'curl is not installed (.ci/run installs it)' }, async (t) => {
  const balancer = await startBalancer();
  t.teardown(() => balancer.stop());
  const result = spawnSync('curl', ['-s', '--haproxy-protocol', `http://127.0.0.1:${balancer.port}/`], { encoding: 'utf8', timeout: 20_000 });
  t.equal(result.status, 0, 'curl succeeded');
  const json = JSON.parse(result.stdout) as Record<string, unknown>;
  t.equal(json.keySource, 'proxy', 'keyed by the PROXY header curl sent');
  t.equal(json.clientIp, '127.0.0.1');
});

t.test('interop: HAProxy 2.6 in front with send-proxy and send-proxy-v2', { skip: which('haproxy') ? false : 'haproxy is not installed (.ci/run installs it)' }, async (t) => {
  const balancer = await startBalancer({ workers: { count: 2, app: INFO_APP } });
  t.teardown(() => balancer.stop());
  for (const server of ['send-proxy', 'send-proxy-v2 proxy-v2-options unique-id,authority']) {
    const port = await startHaproxy(t, 'tcp', [`server s1 127.0.0.1:${balancer.port} ${server}`]);
    for (let i = 0; i < 5; i++) {
      // The client connects to HAProxy from 127.0.0.7: the app must see that address and port.
      const socket = await connectFrom(port, '127.0.0.7');
      const clientPort = socket.localPort!;
      const response = readAll(socket);
      socket.write(GET);
      const answer = parseAnswer(await response);
      t.equal(answer.remoteAddress, '127.0.0.7', `${server}: the app sees HAProxy's client address`);
      t.equal(answer.remotePort, clientPort, `${server}: and its port`);
      t.equal(answer.info.keySource, 'proxy');
      if (server.includes('unique-id')) t.ok(answer.info.proxy?.tlvs.uniqueId, 'the UNIQUE_ID TLV arrived');
    }
  }
});
