import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import t from 'tap';
import { getWorkers, metricSum } from '../helpers/admin.js';
import { ROOT, startBalancer, type RunningBalancer } from '../helpers/balancer.js';
import { nginxMissing, startNginx } from '../helpers/nginx.js';
import { preference } from '../helpers/pool.js';
import { connectSocketIo } from '../helpers/socketio.js';

/** socket.io server in the workers, polling transport only (engine.io errors logged as JSON lines). */
const SOCKETIO_APP = join(ROOT, 'test', 'fixtures', 'socketio-app.js');
const CLIENTS = 20;
const MESSAGES = 50;

t.setTimeout(240_000);

interface ClientOutcome {
  readonly connected: boolean;
  readonly acks: number;
  readonly pids: Set<number>;
  readonly errors: string[];
}

/** One socket.io-client over polling: connect, 50 acknowledged messages, close. */
async function runClient(url: string, options: { extraHeaders?: Record<string, string>; withCredentials?: boolean }): Promise<ClientOutcome> {
  const { socket, connected, errors } = await connectSocketIo(url, { transports: ['polling'], ...options });
  const pids = new Set<number>();
  let acks = 0;
  if (connected) {
    for (let n = 0; n < MESSAGES; n++) {
      try {
        const answer = (await socket.timeout(20_000).emitWithAck('message', n)) as { n: number; pid: number };
        if (answer.n === n) acks++;
        pids.add(answer.pid);
      } catch (error) {
        errors.push(`message ${n}: ${(error as Error).message}`);
        break;
      }
    }
  }
  socket.disconnect();
  return { connected, acks, pids, errors };
}

function countBy(values: readonly number[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

/**
 * engine.io errors that mean a request reached the wrong worker: a bad request,
 * or a session id this worker never opened. A poll for a session this worker
 * opened and already closed is the client's own race (socket.io-client's last
 * poll crossing its close packet) and happens without any balancer.
 */
function engineErrors(balancer: RunningBalancer): Array<Record<string, unknown>> {
  return balancer.logs.filter((line) => line.msg === 'engine.io connection error' && !(line.openedHere === true && line.closedHere === true));
}


const missing = nginxMissing();
if (missing !== null) {
  t.skip(`socket.io through nginx: ${missing}`);
} else {
  for (const reuse of ['handback', 'forward'] as const) t.test(`socket.io polling, 20 clients with their own X-Forwarded-For, through nginx with upstream keep-alive, key.reuse ${reuse}`, async (t) => {
    const balancer = await startBalancer({ key: { reuse, forwardedTrustedHops: 2 }, workers: { count: 2, app: SOCKETIO_APP } });
    t.teardown(() => balancer.stop());
    const nginx = await startNginx(balancer.port, { location: 'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;' });
    t.teardown(() => nginx.stop());
    const workers = await getWorkers(balancer.adminPort as number);
    const pidOf = new Map(workers.map((worker) => [worker.slot, worker.pid as number]));
    const url = `http://127.0.0.1:${nginx.port}`;
    const outcomes = await Promise.all(
      Array.from({ length: CLIENTS }, (_, i) => runClient(url, { extraHeaders: { 'x-forwarded-for': `10.2.0.${i + 1}` } })),
    );
    for (const [i, outcome] of outcomes.entries()) {
      const address = `10.2.0.${i + 1}`;
      t.ok(outcome.connected, `${address} connected`);
      t.equal(outcome.acks, MESSAGES, `${address}: ${MESSAGES} acknowledged messages`);
      t.same(outcome.errors, [], `${address}: no transport error`);
      t.same([...outcome.pids], [pidOf.get(preference(address, 2)[0] as number)], `${address}: one worker, its key's`);
    }
    t.same(engineErrors(balancer), [], 'no request reached a worker that never held its session (no misrouted "Session ID unknown", no bad request)');
    if (reuse === 'handback') t.ok((await metricSum(balancer, 'sticky_handbacks_total')) > 0, 'nginx interleaved clients on its connections; they were handed back');
    else t.ok((await metricSum(balancer, 'sticky_worker_forwarded_requests_total')) > 0, 'nginx interleaved clients on its connections; their requests were relayed');
  });

  t.test('socket.io polling with stickyCookie and no X-Forwarded-For: nginx connects from changing addresses', async (t) => {
    const balancer = await startBalancer({
      key: { reuse: 'handback' },
      workers: { count: 2, app: SOCKETIO_APP },
      stickyCookie: { name: 'srv', secret: randomBytes(24).toString('hex') },
    });
    t.teardown(() => balancer.stop());
    // No X-Forwarded-For at all, and every new upstream connection from one of
    // four loopback addresses picked at random (like the several nodes of an
    // AWS ALB): the only per-connection key is the TCP peer, which says nothing
    // about the client. Only the sticky cookie can keep a session on its worker.
    const nginx = await startNginx(balancer.port, {
      http: 'map $request_id $upstream_source { ~[0-3]$ 127.0.0.11; ~[4-7]$ 127.0.0.12; ~[89ab]$ 127.0.0.13; default 127.0.0.14; }',
      location: 'proxy_bind $upstream_source;',
    });
    t.teardown(() => nginx.stop());
    const url = `http://127.0.0.1:${nginx.port}`;
    // withCredentials: engine.io-client keeps cookies (a jar) in Node.js, like a browser.
    const outcomes = await Promise.all(Array.from({ length: CLIENTS }, () => runClient(url, { withCredentials: true })));
    for (const [i, outcome] of outcomes.entries()) {
      t.ok(outcome.connected, `client ${i} connected`);
      t.equal(outcome.acks, MESSAGES, `client ${i}: ${MESSAGES} acknowledged messages`);
      t.same(outcome.errors, [], `client ${i}: no transport error`);
      t.equal(outcome.pids.size, 1, `client ${i}: one worker`);
    }
    t.same(engineErrors(balancer), [], 'no request reached a worker that never held its session (no misrouted "Session ID unknown", no bad request)');
    // Not asserted (it depends on which pooled connection each handshake takes), only shown:
    t.comment(`sessions per worker pid: ${JSON.stringify(countBy(outcomes.map((outcome) => [...outcome.pids][0] ?? 0)))}`);
  });
}
