import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import t from 'tap';
import { connectionInfo, type ConnectionInfo } from '../../src/shared/connection-info.js';
import type { WorkerMessage } from '../../src/shared/wire/ipc.js';
import { WorkerConnections, type ConnectionsDeps } from '../../src/worker/connections.js';
import type { ConnectionHook } from '../../src/worker/hooks.js';
import { pollUntil } from '../helpers/balancer.js';

const INFO: ConnectionInfo = { key: '198.51.100.4', keySource: 'proxy', worker: 0, proxy: null };

/** A WorkerConnections over a real app server that never listens, with its messages and exits recorded. */
function harness(app: net.Server, options: Partial<ConnectionsDeps> = {}): { connections: WorkerConnections; sent: WorkerMessage[]; exits: number[] } {
  const sent: WorkerMessage[] = [];
  const exits: number[] = [];
  const connections = new WorkerConnections({
    server: () => app,
    front: () => app,
    connectionHooks: [],
    peerConnectTimeoutMs: 1000,
    send: (message) => void sent.push(message),
    exit: (code) => void exits.push(code),
    reportEveryMs: 5,
    ...options,
  });
  return { connections, sent, exits };
}

/** A connected pair on loopback: the client end, and the server end as the master would hand it over. */
async function pair(t: { teardown(fn: () => unknown): void }): Promise<{ client: net.Socket; handed: net.Socket }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const [handed] = await accepted;
  t.teardown(() => client.destroy());
  return { client, handed };
}

function readAll(socket: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.once('end', () => resolve(text));
    socket.once('close', () => resolve(text));
  });
}

const lastActive = (sent: WorkerMessage[]): Extract<WorkerMessage, { type: 'active' }> | undefined =>
  sent.filter((message): message is Extract<WorkerMessage, { type: 'active' }> => message.type === 'active').at(-1);

t.test("the master's bytes come first, the app sees the PROXY client and the info, and the count goes up and down", async (t) => {
  const seen: Array<{ url: string | undefined; remote: string | undefined; key: string | undefined }> = [];
  const app = http.createServer((req, res) => {
    seen.push({ url: req.url, remote: req.socket.remoteAddress, key: connectionInfo(req.socket)?.key });
    res.end('ok');
  });
  const { connections, sent } = harness(app);
  const { client, handed } = await pair(t);
  const answer = readAll(client);
  const info: ConnectionInfo = { ...INFO, proxy: { source: { address: '198.51.100.4', port: 4000 }, destination: { address: '10.0.0.1', port: 80 }, tlvs: {} } };
  // The head split between what the master read and what comes later.
  connections.take(Buffer.from('GET /split HTT'), info, handed);
  await pollUntil(() => (lastActive(sent)?.count === 1 ? true : undefined));
  client.write('P/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  t.match(await answer, /^HTTP\/1\.1 200[\s\S]*ok$/);
  t.same(seen, [{ url: '/split', remote: '198.51.100.4', key: '198.51.100.4' }]);
  await pollUntil(() => (lastActive(sent)?.count === 0 ? true : undefined));
  t.match(sent.filter((message) => message.type === 'active'), [{ count: 1, received: 1 }, { count: 0, received: 1 }]);
});

t.test('a connection a hook takes never reaches the app', async (t) => {
  let emitted = 0;
  const app = http.createServer();
  app.on('connection', () => emitted++);
  const taken: string[] = [];
  const hook: ConnectionHook = (socket, bytes) => {
    taken.push(bytes.toString());
    socket.destroy();
    return true;
  };
  const { connections } = harness(app, { connectionHooks: [hook] });
  const { handed } = await pair(t);
  connections.take(Buffer.from('framed'), INFO, handed);
  t.same(taken, ['framed']);
  t.equal(emitted, 0);
});

t.test('the client left in flight: nothing served, but a counted client is released', async (t) => {
  const { connections, sent } = harness(http.createServer());
  connections.take(Buffer.alloc(0), { ...INFO, limitClient: '198.51.100.4' }, undefined);
  await pollUntil(() => (lastActive(sent) !== undefined ? true : undefined));
  t.same(lastActive(sent), { type: 'active', count: 0, received: 1, closedClients: ['198.51.100.4'] });
});

t.test('drain: exits at once when idle, else once the last connection and link stream close', async (t) => {
  const idle = harness(http.createServer());
  idle.connections.drain(60_000);
  t.same(idle.exits, [0], 'nothing open: exit now');
  t.ok(idle.connections.draining);

  const app = http.createServer((_req, res) => res.end('bye'));
  const busy = harness(app);
  const { client, handed } = await pair(t);
  busy.connections.take(Buffer.alloc(0), INFO, handed);
  busy.connections.streamCount(true);
  busy.connections.drain(60_000);
  t.same(busy.exits, [], 'a connection and a stream are open');
  const answer = readAll(client);
  client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  t.match(await answer, /connection: close/i, 'the response asks the client to close');
  await pollUntil(() => (handed.destroyed ? true : undefined));
  t.same(busy.exits, [], 'the link stream is still open');
  busy.connections.streamCount(false);
  t.same(busy.exits, [0]);
});

t.test('drain: past its timeout the worker exits with what is still open', async (t) => {
  const { connections, exits } = harness(http.createServer());
  const { handed } = await pair(t);
  connections.take(Buffer.alloc(0), INFO, handed);
  connections.drain(50);
  await pollUntil(() => (exits.length > 0 ? true : undefined));
  t.same(exits, [0]);
});

t.test("another node's key with no node answering: the peer is reported and the app serves it, without the plan", async (t) => {
  const dead = await new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
  const infos: Array<ConnectionInfo | null> = [];
  const app = http.createServer((req, res) => {
    infos.push(connectionInfo(req.socket));
    res.end('served here');
  });
  const { connections, sent } = harness(app);
  const { client, handed } = await pair(t);
  const answer = readAll(client);
  const forward = { peers: [{ id: `127.0.0.1:${dead}`, host: '127.0.0.1', port: dead }], header: '', acceptedAt: 0, retrying: [] };
  connections.take(Buffer.from('GET /here HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), { ...INFO, node: 'me:1', forward }, handed);
  t.match(await answer, /served here$/);
  t.same(sent.filter((message) => message.type === 'peer'), [{ type: 'peer', peer: `127.0.0.1:${dead}`, outcome: 'refused' }]);
  t.equal(infos[0]?.forward, undefined, 'the app never sees the plan');
  t.equal(infos[0]?.node, 'me:1');
});
