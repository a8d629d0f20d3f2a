import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import t from 'tap';
import { pipelined, splitPost, webSocketEcho } from '../helpers/byte-exact.js';
import { DEMO_APP, MASTER, ROOT, connect, demoGet, readAll, startBalancer, writeConfig } from '../helpers/balancer.js';

t.setTimeout(120_000);

t.test('sticky by X-Forwarded-For across fresh connections (the default key order)', async (t) => {
  const balancer = await startBalancer();
  t.teardown(() => balancer.stop());

  const workersByXff = new Map<string, Set<number>>();
  for (let client = 0; client < 20; client++) {
    const xff = `198.51.100.${client + 1}`;
    const seen = new Set<number>();
    for (let i = 0; i < 10; i++) {
      const answer = await demoGet(balancer.port, { 'x-forwarded-for': xff });
      t.equal(answer.key, xff, 'the key is the X-Forwarded-For address');
      t.equal(answer.keySource, 'forwarded');
      seen.add(answer.pid);
    }
    workersByXff.set(xff, seen);
  }
  t.ok([...workersByXff.values()].every((pids) => pids.size === 1), 'every X-Forwarded-For key always lands on one worker');
  t.equal(new Set([...workersByXff.values()].flatMap((pids) => [...pids])).size, 2, 'both workers are used');

  // The default order leaves the cookie out: an app's session cookie, set after the first request, never moves its client.
  const withCookie = await demoGet(balancer.port, { cookie: 'sid=set-by-the-app', 'x-forwarded-for': '198.51.100.1' });
  t.equal(withCookie.keySource, 'forwarded', 'by default a cookie is not a key');
  t.equal(withCookie.pid, [...(workersByXff.get('198.51.100.1') as Set<number>)][0], 'the client stays on the worker of its address');
});

t.test('key.order with "cookie" first: sticky by the cookie whatever the address', async (t) => {
  const balancer = await startBalancer({ key: { order: ['cookie', 'proxy', 'forwarded', 'remote'] } });
  t.teardown(() => balancer.stop());
  const workersByCookie = new Map<string, Set<number>>();
  for (let client = 0; client < 20; client++) {
    const sid = `session-${client}-${randomBytes(4).toString('hex')}`;
    const seen = new Set<number>();
    for (let i = 0; i < 10; i++) {
      // A different X-Forwarded-For each time: the cookie must win.
      const answer = await demoGet(balancer.port, { cookie: `theme=dark; sid=${sid}; lang=en`, 'x-forwarded-for': `203.0.113.${i + 1}` });
      t.equal(answer.keySource, 'cookie');
      t.equal(answer.key, sid);
      seen.add(answer.pid);
    }
    workersByCookie.set(sid, seen);
  }
  t.ok([...workersByCookie.values()].every((pids) => pids.size === 1), 'every cookie key always lands on one worker');
  t.equal(new Set([...workersByCookie.values()].flatMap((pids) => [...pids])).size, 2, 'both workers are used');

  const remote = await demoGet(balancer.port);
  t.equal(remote.keySource, 'remote');
  t.equal(remote.key, '127.0.0.1');
  t.equal(remote.clientIp, '127.0.0.1', 'without a PROXY header the app sees the TCP peer');
});

t.test('connections reach the workers on their fd channels (batched descriptor passing) on Linux', async (t) => {
  const balancer = await startBalancer();
  t.teardown(() => balancer.stop());
  const listening = await balancer.waitForLog((line) => line.msg === 'listening');
  const expected = process.platform === 'linux' ? 'fd-channel' : 'ipc';
  t.equal(listening.handoff, expected, `the master uses ${expected}`);
  const ready = balancer.logs.filter((line) => line.msg === 'worker ready');
  t.equal(ready.length, 2);
  t.ok(ready.every((line) => line.fdChannel === (expected === 'fd-channel')), 'every worker reads its fd channel');
  const answer = await demoGet(balancer.port, { 'x-forwarded-for': '198.51.100.9' });
  t.equal(answer.key, '198.51.100.9');
});

t.test('the worker sets TCP_NODELAY as the app server asks, as net.Server would (both hand-off paths)', async (t) => {
  for (const handoff of ['auto', 'ipc'] as const) {
    const balancer = await startBalancer({ workers: { count: 1, app: join(ROOT, 'test', 'fixtures', 'info-app.js'), handoff } });
    const response = await fetch(`http://127.0.0.1:${balancer.port}/`, { headers: { connection: 'close' } });
    const seen = (await response.json()) as { noDelay: boolean | null };
    t.equal(seen.noDelay, true, `http.createServer's noDelay default is applied (workers.handoff "${handoff}")`);
    await balancer.stop();
  }
});

for (const handoff of ['auto', 'ipc'] as const) t.test(`byte-exact hand-off (workers.handoff "${handoff}"): 1 MiB POST with its first packet split at odd offsets`, async (t) => {
  const balancer = await startBalancer({ workers: { count: 2, app: DEMO_APP, handoff } });
  t.teardown(() => balancer.stop());
  if (handoff === 'ipc') t.equal((await balancer.waitForLog((line) => line.msg === 'listening')).handoff, 'ipc');
  for (const offsets of [[1], [3, 17], [5, 40, 77], [13, 61, 150, 151]]) {
    const { statusLine, sent, received } = await splitPost(balancer.port, offsets);
    t.match(statusLine, /^HTTP\/1\.1 200/, `status 200 (split at ${offsets.join(',')})`);
    t.equal(received.length, sent.length, 'every byte came back');
    t.ok(received.equals(sent), 'byte for byte');
  }
});

t.test('three pipelined requests in one first packet all get answers', async (t) => {
  const balancer = await startBalancer();
  t.teardown(() => balancer.stop());
  const text = await pipelined(balancer.port);
  t.equal(text.match(/HTTP\/1\.1 200 OK/g)?.length, 3, 'three answers');
  t.match(text, /\r\n\r\nhello/, 'the POST body echoed');
});

t.test('WebSocket echo through the balancer', async (t) => {
  const balancer = await startBalancer();
  t.teardown(() => balancer.stop());
  const { binaryIntact, text } = await webSocketEcho(balancer.port);
  t.ok(binaryIntact, 'binary message echoed byte for byte');
  t.equal(text, 'héllo');
});

t.test('the master survives any bytes a client sends', async (t) => {
  const balancer = await startBalancer({ limits: { peekBytes: 4096, peekTimeoutMs: 2000 } });
  t.teardown(() => balancer.stop());
  const garbage: Buffer[] = [
    randomBytes(1),
    randomBytes(5000),
    Buffer.from('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03'),
    Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
    Buffer.from('GET / HTTP/1.1\r\nx-forwarded-for: \0\r\n\r\n'),
    Buffer.from('GET / HTTP/1.1\r\ncookie: ' + 'a=b; '.repeat(700) + '\r\n\r\n'),
    Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nGARBAGE\r\n\r\n'),
    Buffer.from('PROXY TCP9 x\r\n'),
    Buffer.from('\r\n\r\n\0\r\nQUIT\n\x21\x11\xff\xff'),
  ];
  for (let i = 0; i < 50; i++) garbage.push(randomBytes(1 + (i * 97) % 3000));
  await Promise.all(
    garbage.map(async (bytes) => {
      const socket = await connect(balancer.port);
      const done = readAll(socket);
      socket.end(bytes);
      await done;
    }),
  );
  const answer = await demoGet(balancer.port, { 'x-forwarded-for': '198.51.100.1' });
  t.equal(answer.key, '198.51.100.1', 'still serving after the garbage');
  t.equal(balancer.proc.exitCode, null, 'the master is alive');
});

t.test('bad config and bad flags exit 2 with one clear line', async (t) => {
  const cases: Array<{ name: string; args: string[]; line: RegExp }> = [
    { name: 'workers.count "two"', args: ['--config', writeConfig({ workers: { count: 'two' } })], line: /workers\.count: expected a positive integer or "auto", got "two"/ },
    { name: 'unknown key', args: ['--config', writeConfig({ lisen: {} })], line: /unknown key "lisen"/ },
    { name: 'bad key source', args: ['--config', writeConfig({ key: { order: ['cookie', 'ip'] } })], line: /^sticky-session-ts: (\S*config\.json: )?key\.order\.1: / },
    { name: 'bad CIDR', args: ['--config', writeConfig({ proxyProtocol: { mode: 'optional', trustedFrom: ['10.0.0.0/33'] } })], line: /proxyProtocol\.trustedFrom/ },
    { name: 'bad --port', args: ['--port', 'eighty'], line: /--port: expected a port number/ },
    { name: 'bad --workers', args: ['--workers', '0'], line: /--workers: expected a positive integer/ },
    { name: 'unknown flag', args: ['--frobnicate'], line: /command line: / },
    { name: 'missing file', args: ['--config', '/nonexistent/config.json'], line: /cannot read config/ },
  ];
  for (const c of cases) {
    const result = spawnSync(process.execPath, [MASTER, ...c.args], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
    t.equal(result.status, 2, `${c.name}: exit code 2`);
    const lines = result.stderr.trim().split('\n');
    t.equal(lines.length, 1, `${c.name}: one line`);
    t.match(lines[0], c.line, `${c.name}: names the problem`);
  }
});

t.test('flags override the config file', async (t) => {
  const balancer = await startBalancer({ workers: { count: 3, app: DEMO_APP } }, ['--workers', '1']);
  t.teardown(() => balancer.stop());
  const pids = new Set<number>();
  for (let i = 0; i < 12; i++) pids.add((await demoGet(balancer.port, { 'x-forwarded-for': `198.51.100.${i + 1}` })).pid);
  t.equal(pids.size, 1, '--workers 1 wins over workers.count 3');
});
