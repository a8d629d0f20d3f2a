import http from 'node:http';
import net from 'node:net';
import t from 'tap';
import type { ConnectionInfo } from '../../../src/shared/connection-info.js';
import { hashKey } from '../../../src/shared/ring/farmhash.js';
import { pickSlot } from '../../../src/shared/ring/rendezvous.js';
import type { HandbackKey } from '../../../src/shared/wire/fd-batch.js';
import { setPoolView } from '../../../src/worker/reuse/destination.js';
import { handbackConnectionHook } from '../../../src/worker/reuse/handback.js';
import { offWorkerRequests } from '../../../src/worker/reuse/metrics.js';
import { workerRegistry } from '../../../src/worker/metrics.js';
import { PROXIED, resolvedConfig, reuseContext } from '../../helpers/worker.js';

// This worker is slot 0 of 2; OWN and OWN2 place here, OTHER on slot 1.
setPoolView(2, [1, 1], [10, 11]);
const keys: string[][] = [[], []];
for (let i = 0; keys[0]!.length < 2 || keys[1]!.length < 1; i++) keys[pickSlot(hashKey(`203.0.113.${i}`), 2)]!.push(`203.0.113.${i}`);
const [OWN, OWN2] = keys[0] as [string, string];
const OTHER = keys[1]![0] as string;

const resolved = resolvedConfig({});

function post(client: string, body: string, extra = ''): string {
  return `POST /x HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: ${client}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
}

function chunked(client: string, chunks: string[]): string {
  const body = chunks.map((c) => `${Buffer.byteLength(c).toString(16)}\r\n${c}\r\n`).join('');
  return `POST /c HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: ${client}\r\nTransfer-Encoding: chunked\r\n\r\n${body}0\r\n\r\n`;
}

interface HandedBack {
  readonly bytes: Buffer;
  readonly info: ConnectionInfo;
  readonly next: HandbackKey;
}

/**
 * An app server (never listening: fed by the hook) answering `<client>:<body>`,
 * and a real loopback connection whose server side goes through the hook with
 * `first` as the bytes the master read. `hold` delays the app's answers until
 * released.
 */
async function harness(t: Tap.Test, first: string, options: { headTimeoutMs?: number; info?: ConnectionInfo; hold?: boolean } = {}) {
  const handedBack: HandedBack[] = [];
  const releases: Array<() => void> = [];
  const seen: string[] = [];
  const app = http.createServer((req, res) => {
    seen.push(String(req.headers['x-forwarded-for']));
    const parts: Buffer[] = [];
    req.on('data', (chunk: Buffer) => parts.push(chunk));
    req.on('end', () => {
      const answer = (): void => {
        res.end(`${String(req.headers['x-forwarded-for'])}:${Buffer.concat(parts).toString()}`);
      };
      if (options.hold === true) releases.push(answer);
      else answer();
    });
  });
  const ctx = {
    ...reuseContext(resolved, 0),
    headTimeoutMs: options.headTimeoutMs ?? 1000,
    server: () => app as net.Server,
    handBack: (_socket: net.Socket, bytes: Buffer, info: ConnectionInfo, next: HandbackKey, done: (error: Error | null) => void) => {
      handedBack.push({ bytes, info, next });
      done(null);
    },
  };
  const hook = handbackConnectionHook(ctx);
  let taken: boolean | null = null;
  let serverSide: net.Socket | null = null;
  // As the runtime sets it from the app's server: a client's FIN must not end the connection.
  const listener = net.createServer({ allowHalfOpen: true }, (socket) => {
    serverSide = socket;
    taken = hook(socket, Buffer.from(first), options.info ?? PROXIED);
    if (!taken) socket.destroy();
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  t.teardown(() => listener.close());
  const client = net.connect((listener.address() as net.AddressInfo).port, '127.0.0.1');
  client.setNoDelay(true);
  // A server that answers 400 closes while the rest is still being written.
  client.on('error', () => {});
  let received = '';
  client.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  const closed = new Promise<void>((resolve) => client.on('close', () => resolve()));
  await new Promise<void>((resolve) => client.once('connect', resolve));
  for (let i = 0; taken === null; i++) await new Promise((resolve) => setImmediate(resolve));
  return {
    handedBack,
    releases,
    /** The client of each request the app was given, in order. */
    seen,
    taken: taken as boolean,
    serverSide: () => serverSide as unknown as net.Socket,
    closed,
    received: () => received,
    /** Writes `bytes` to the connection in pieces of `size`, one event-loop turn apart. */
    async write(bytes: string, size = 7): Promise<void> {
      for (let at = 0; at < bytes.length && client.writable; at += size) {
        client.write(bytes.slice(at, at + size), 'latin1');
        await new Promise((resolve) => setImmediate(resolve));
      }
    },
    end: () => client.end(),
  };
}

/** The response bodies in `text`, in order. */
function bodies(text: string): string[] {
  return [...text.matchAll(/HTTP\/1\.1 200 OK\r\n(?:[^\r]+\r\n)*?Content-Length: (\d+)\r\n(?:[^\r]+\r\n)*\r\n/g)].map((m) => text.slice((m.index ?? 0) + m[0].length, (m.index ?? 0) + m[0].length + Number(m[1])));
}

t.test('requests of this slot are served one at a time; at another slot\'s request the unserved bytes go back exactly', async (t) => {
  const h = await harness(t, post(OWN, 'a'), { hold: true });
  t.equal(h.taken, true, 'a connection from a trusted proxy keyed by X-Forwarded-For is taken');
  const rest = post(OWN2, 'hello') + chunked(OWN, ['ab', 'cde']);
  const handedOn = post(OTHER, 'zz') + post(OWN, 'after');
  await h.write(rest + handedOn);
  // Every byte is read before the first answer goes: the hand-back then carries them all
  // (in production what it has not read yet follows in the descriptor the master gets).
  for (let i = 0; h.serverSide().bytesRead < Buffer.byteLength(rest + handedOn) && i < 100_000; i++) await new Promise((resolve) => setImmediate(resolve));
  for (let i = 0; h.handedBack.length === 0 && i < 100_000; i++) {
    h.releases.shift()?.();
    await new Promise((resolve) => setImmediate(resolve));
  }
  await h.closed;
  t.same(bodies(h.received()), [`${OWN}:a`, `${OWN2}:hello`, `${OWN}:abcde`], 'the three requests of this slot, in order, every response whole');
  t.equal(h.handedBack.length, 1);
  const back = h.handedBack[0] as HandedBack;
  t.equal(back.bytes.toString('latin1'), handedOn, 'every byte from the next request on, none lost, none reordered');
  t.same(back.next, { key: OTHER, keySource: 'forwarded' }, 'the master routes it by the next request\'s key');
});

t.test('a request for another slot after the client half-closed is served here and counted', async (t) => {
  const h = await harness(t, post(OWN, 'a'), { hold: true });
  const ended = new Promise<void>((resolve) => h.serverSide().once('end', () => resolve()));
  const before = (await offWorkerRequests.get()).values[0]?.value ?? 0;
  await h.write(post(OTHER, 'b'));
  h.end();
  await ended;
  // The first answer was held until the FIN was read: the next request cannot move any more.
  h.releases.shift()?.();
  await h.closed;
  // The app's server, like any Node server, drops what a half-closed client asked after its FIN.
  t.same(h.seen, [OWN, OTHER], 'both requests went to this worker\'s app');
  t.same(bodies(h.received()), [`${OWN}:a`]);
  t.equal(h.handedBack.length, 0);
  t.equal(((await offWorkerRequests.get()).values[0]?.value ?? 0) - before, 1);
});

t.test('connections that cannot carry other clients, and first requests that close, keep the plain path', async (t) => {
  const untrusted = await harness(t, post(OWN, 'a'), { info: { ...PROXIED, peerTrusted: false } });
  t.equal(untrusted.taken, false, 'a peer that is not a trusted proxy');
  const fromProxy = await harness(t, post(OWN, 'a'), { info: { ...PROXIED, keySource: 'proxy' } });
  t.equal(fromProxy.taken, false, 'a key from the PROXY header');
  const closing = await harness(t, post(OWN, 'a', 'Connection: close\r\n'));
  t.equal(closing.taken, false, 'Connection: close on the first request');
});

t.test('framing it will not guess: everything after goes to the app, nothing is handed back', async (t) => {
  const passthrough = async (): Promise<number> => {
    const metric = (await workerRegistry.getSingleMetric('sticky_worker_reuse_passthrough_total')?.get())?.values ?? [];
    return metric.find((v) => v.labels.reason === 'ERR_HTTP_BAD_TRANSFER_ENCODING')?.value ?? 0;
  };
  const before = await passthrough();
  const h = await harness(t, post(OWN, 'a'));
  await h.write(`POST /x HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: ${OWN}\r\nTransfer-Encoding: gzip\r\n\r\n` + post(OTHER, 'b'));
  await h.closed;
  t.same(bodies(h.received()), [`${OWN}:a`]);
  t.match(h.received(), /HTTP\/1\.1 400 Bad Request/, 'the app\'s server answers it, as without key.reuse');
  t.equal(h.handedBack.length, 0);
  t.equal((await passthrough()) - before, 1);
});

t.test('a later head left unfinished gets the 408 Node itself would send', async (t) => {
  const h = await harness(t, post(OWN, 'a'), { headTimeoutMs: 50 });
  await h.write(`GET / HTTP/1.1\r\nHost: a\r\nX-Forw`);
  await h.closed;
  t.same(bodies(h.received()), [`${OWN}:a`]);
  t.match(h.received(), /HTTP\/1\.1 408 Request Timeout\r\nConnection: close\r\n\r\n$/);
  t.equal(h.handedBack.length, 0);
});
