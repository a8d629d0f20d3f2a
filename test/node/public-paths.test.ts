import { spawnSync } from 'node:child_process';
import { copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { pidsBySlot } from '../helpers/admin.js';
import { MASTER, ROOT, connect, readResponse, startBalancer, writeConfig, type RunningBalancer } from '../helpers/balancer.js';
import { pipelined, splitPost, tlsPost, webSocketEcho } from '../helpers/byte-exact.js';
import { createTestCa, opensslMissing } from '../helpers/certs.js';
import { keysBySlot } from '../helpers/pool.js';
import { PUBLIC_PATHS, type PublicPath } from '../../src/node/public-paths.js';

t.setTimeout(240_000);

const GROUPS = Object.keys(PUBLIC_PATHS) as PublicPath[];
/** Answers with x-pid and the request body (test/fixtures/reuse-app.js). */
const REUSE_APP = join(ROOT, 'test', 'fixtures', 'reuse-app.js');

/** What the built internals module reports under STICKY_NODE_PUBLIC=`value`. */
function inUse(value: string): Record<PublicPath, boolean> {
  const script = "process.stdout.write(JSON.stringify(require('./dist/src/node/internals.js').INTERNALS_IN_USE))";
  const run = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, env: { ...process.env, STICKY_NODE_PUBLIC: value }, encoding: 'utf8' });
  return JSON.parse(run.stdout) as Record<PublicPath, boolean>;
}

t.test('STICKY_NODE_PUBLIC turns off exactly the groups it names', async (t) => {
  t.same(inUse(''), Object.fromEntries(GROUPS.map((group) => [group, true])), `every internal in use on Node ${process.version}`);
  for (const group of GROUPS) t.same(inUse(` ${group} `), Object.fromEntries(GROUPS.map((other) => [other, other !== group])), `${group} alone`);
  t.same(inUse('fd-open,response-relay'), { 'raw-accept': true, 'fd-open': false, 'response-relay': false, 'stop-reading': true }, 'a list');
  t.same(inUse('all'), Object.fromEntries(GROUPS.map((group) => [group, false])), 'all');
});

t.test('with neither raw reads nor stopped socket reads the master refuses to start rather than lose bytes', async (t) => {
  const run = spawnSync(process.execPath, [MASTER, '--config', writeConfig()], { cwd: ROOT, env: { ...process.env, STICKY_NODE_PUBLIC: 'raw-accept,stop-reading' }, encoding: 'utf8', timeout: 60_000 });
  t.equal(run.status, 1, 'exit 1');
  t.match(run.stdout, /cannot hand connections off without losing bytes/, 'says why');
  t.notMatch(run.stdout, /"msg":"listening"/, 'never listened');
});

/** A balancer on the public path of `group`, after its one warn line naming it. */
async function onPublicPath(t: Test, group: PublicPath, overrides: Record<string, unknown> = {}): Promise<RunningBalancer> {
  const balancer = await startBalancer(overrides, [], { STICKY_NODE_PUBLIC: group });
  t.teardown(() => balancer.stop());
  const warned = balancer.logs.filter((line) => line.internal === group);
  t.equal(warned.length, 1, `one warn line names ${group}`);
  t.equal(warned[0]?.level, 'warn', 'at warn');
  t.equal(warned[0]?.instead, PUBLIC_PATHS[group].instead, 'saying what it does instead');
  return balancer;
}

for (const group of GROUPS) {
  t.test(`${group} on its public path: 1 MiB split-write POST, pipelining and WebSocket stay byte-exact`, async (t) => {
    const balancer = await onPublicPath(t, group);
    const listening = await balancer.waitForLog((line) => line.msg === 'listening');
    if (group === 'fd-open') t.equal(listening.handoff, 'ipc', "hand-offs over Node's IPC");
    for (const offsets of [[1], [5, 40, 77]]) {
      const { statusLine, sent, received } = await splitPost(balancer.port, offsets);
      t.match(statusLine, /^HTTP\/1\.1 200/, `status 200 (split at ${offsets.join(',')})`);
      t.ok(received.equals(sent), `1 MiB byte for byte (${received.length} of ${sent.length})`);
    }
    const text = await pipelined(balancer.port);
    if (group === 'stop-reading') {
      // key.reuse works as "close": the first answer closes a connection that may carry other clients (RFC 9112 9.6: the client sends the rest again).
      t.equal(text.match(/HTTP\/1\.1 200 OK/g)?.length, 1, 'one answer, then the close');
      t.match(text, /^HTTP\/1\.1 200 OK\r\nconnection: close\r\n[\s\S]*"key":"198\.51\.100\.7"[^}]*\}$/, 'complete, and it says Connection: close');
    } else {
      t.equal(text.match(/HTTP\/1\.1 200 OK/g)?.length, 3, 'three pipelined answers');
      t.match(text, /\r\n\r\nhello/, 'the POST body echoed');
    }
    const ws = await webSocketEcho(balancer.port);
    t.ok(ws.binaryIntact, 'WebSocket binary echoed byte for byte');
    t.equal(ws.text, 'héllo');
  });

  t.test(`${group} on its public path: requests of both workers' keys on keep-alive connections each reach their key's worker intact (key.reuse "forward")`, async (t) => {
    const balancer = await onPublicPath(t, group, { key: { reuse: 'forward' }, workers: { count: 2, app: REUSE_APP } });
    const pids = await pidsBySlot(balancer);
    const [slot0, slot1] = keysBySlot(2, 1) as [string[], string[]];
    let socket = await connect(balancer.port);
    let closed = false;
    socket.once('close', () => (closed = true));
    let wrong = 0;
    let corrupt = 0;
    let reconnects = 0;
    for (let i = 0; i < 30; i++) {
      if (closed) {
        // stop-reading's public path closes a connection after a request of another worker's key.
        reconnects++;
        socket = await connect(balancer.port);
        closed = false;
        socket.once('close', () => (closed = true));
      }
      const slot = i % 2;
      const key = (slot === 0 ? slot0 : slot1)[0] as string;
      const body = Buffer.alloc(3000 + i * 101, i);
      const bytes = Buffer.concat([Buffer.from(`POST /r${i} HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${key}\r\ncontent-length: ${body.length}\r\n\r\n`), body]);
      // Split writes: heads and bodies cross segments on their way.
      for (let at = 0; at < bytes.length; at += 1000) socket.write(bytes.subarray(at, at + 1000));
      const response = await readResponse(socket);
      if (Number(response.fields.get('x-pid')) !== pids.get(slot)) wrong++;
      if (!response.body.equals(body)) corrupt++;
      // A closing response: wait for the close before the next request.
      if (response.fields.get('connection') === 'close') for (let w = 0; w < 400 && !closed; w++) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    socket.destroy();
    t.equal(wrong, 0, "every answer from its key's worker");
    t.equal(corrupt, 0, 'every body byte for byte');
    if (group === 'stop-reading') t.ok(reconnects > 0, `connections closed instead of moving (${reconnects} reconnects)`);
    else t.equal(reconnects, 0, 'the connection stayed open');
  });
}

t.test('TLS on every public path at once that can start: a 1 MiB POST and wss stay byte-exact', { skip: opensslMissing() ?? false }, async (t) => {
  const ca = createTestCa();
  t.teardown(() => rmSync(ca.dir, { recursive: true, force: true }));
  const cert = ca.issue('public');
  const certPath = join(ca.dir, 'public-live.pem');
  const keyPath = join(ca.dir, 'public-live.key');
  copyFileSync(cert.certPath, certPath);
  copyFileSync(cert.keyPath, keyPath);
  for (const groups of ['raw-accept,fd-open,response-relay', 'fd-open,response-relay,stop-reading']) {
    const balancer = await startBalancer({ tls: { cert: certPath, key: keyPath } }, [], { STICKY_NODE_PUBLIC: groups });
    const posted = await tlsPost(balancer.port, ca.caPem);
    t.equal(posted.status, 200, `${groups}: status 200`);
    t.ok(posted.received.equals(posted.sent), `${groups}: 1 MiB over TLS byte for byte`);
    const ws = await webSocketEcho(balancer.port, { scheme: 'wss', ca: ca.caPem });
    t.ok(ws.binaryIntact, `${groups}: wss binary echoed byte for byte`);
    await balancer.stop();
  }
});
