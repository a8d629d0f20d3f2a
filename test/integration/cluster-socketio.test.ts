import { join } from 'node:path';
import t from 'tap';
import { admin, pollUntil, ROOT, which, type RunningBalancer } from '../helpers/balancer.js';
import { startFront, startNodes, type TestNode } from '../helpers/nodes.js';
import { startRedis } from '../helpers/peers.js';
import { connectSocketIo, type SocketIoClient } from '../helpers/socketio.js';

/** socket.io over polling with @socket.io/redis-adapter in every worker of every node. */
const APP = join(ROOT, 'test', 'fixtures', 'socketio-cluster-app.js');
const CLIENTS = 50;
const MESSAGES = 10;

t.setTimeout(240_000);

/** engine.io errors that mean a request reached a worker that does not hold its session (as in socketio.test.ts). */
function engineErrors(balancer: RunningBalancer): Array<Record<string, unknown>> {
  return balancer.logs.filter((line) => line.msg === 'engine.io connection error' && !(line.openedHere === true && line.closedHere === true));
}

interface Client {
  readonly address: string;
  readonly io: SocketIoClient;
  readonly pids: Set<number>;
  readonly broadcasts: string[];
  readonly close: () => void;
}

if (which('redis-server') === null) {
  t.skip('socket.io on many nodes: redis-server is not installed');
} else {
  t.test(`${CLIENTS} socket.io polling clients entering through random nodes, Redis adapter between the workers`, async (t) => {
    const redis = await startRedis();
    t.teardown(() => redis.stop());
    const { nodes } = await startNodes(3, (ids) => ids, { workers: { count: 2, app: APP } }, undefined, { STICKY_TEST_REDIS: redis.url });
    t.teardown(async () => {
      for (const node of nodes) await node.balancer.stop();
    });
    await pollUntil(async () => {
      const views = await Promise.all(nodes.map(async (node) => JSON.parse((await admin(node.balancer.adminPort as number, '/cluster')).body.toString()) as { members: Array<{ state: string }> }));
      return views.every((view) => view.members.filter((member) => member.state === 'ready').length === 3) ? true : undefined;
    });

    // Each client has its own front, which sends every one of its connections to a random node.
    const clients: Client[] = await Promise.all(
      Array.from({ length: CLIENTS }, async (_, i): Promise<Client> => {
        const address = `10.9.${Math.floor(i / 20)}.${(i % 20) + 1}`;
        const front = await startFront(() => nodes, address);
        const io = await connectSocketIo(`http://127.0.0.1:${front.port}`, { transports: ['polling'] });
        const broadcasts: string[] = [];
        io.socket.on('broadcast', (text: string) => broadcasts.push(text));
        return { address, io, pids: new Set(), broadcasts, close: () => (io.socket.disconnect(), front.close()) };
      }),
    );
    t.teardown(() => {
      for (const client of clients) client.close();
    });

    await Promise.all(
      clients.map(async (client) => {
        if (!client.io.connected) return;
        for (let n = 0; n < MESSAGES; n++) {
          const answer = (await client.io.socket.timeout(20_000).emitWithAck('message', n)) as { pid: number };
          client.pids.add(answer.pid);
        }
      }),
    );
    for (const client of clients) {
      t.ok(client.io.connected, `${client.address} connected`);
      t.equal(client.pids.size, 1, `${client.address}: every answer from one worker`);
      t.same(client.io.errors, [], `${client.address}: no connect error, no disconnect`);
    }
    const workerPids = new Set(clients.flatMap((client) => [...client.pids]));
    t.ok(workerPids.size > 3, `the clients are spread over the nodes' workers (${workerPids.size} of 6)`);
    t.same(nodes.flatMap((node: TestNode) => engineErrors(node.balancer)), [], 'no "Session ID unknown" or bad request on any node');

    // The adapter asks every worker of every node; the count is whole once each has subscribed.
    const asker = clients[0] as Client;
    await pollUntil(async () => ((await asker.io.socket.timeout(10_000).emitWithAck('count')) === CLIENTS ? true : undefined), 30_000, 200);
    const text = `hello ${Date.now()}`;
    await asker.io.socket.timeout(10_000).emitWithAck('shout', text);
    await pollUntil(() => (clients.every((client) => client.broadcasts.includes(text)) ? true : undefined), 20_000).catch(() => undefined);
    t.equal(clients.filter((client) => client.broadcasts.includes(text)).length, CLIENTS, 'the broadcast reached every client on every node');
    for (const client of clients) t.same(client.io.errors, [], `${client.address}: still connected`);
  });
}
