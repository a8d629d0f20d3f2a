import http from 'node:http';
import t from 'tap';
import { clientAddress, startExample, startHaproxyV2 } from '../helpers/examples.js';
import { nginxMissing, startNginx } from '../helpers/nginx.js';
import { connectSocketIo } from '../helpers/socketio.js';

t.setTimeout(240_000);

/** What one client saw: its acknowledged whoami answers, their pids and transports, and any error. */
interface Outcome {
  readonly acks: number;
  readonly pids: Set<number>;
  readonly lastTransport: string;
  readonly errors: string[];
}

/** One socket.io client from its own address: connect, 10 acknowledged `whoami`, close. */
async function client(url: string, localAddress: string, transports: string[]): Promise<Outcome> {
  const agent = new http.Agent({ keepAlive: true, localAddress } as http.AgentOptions);
  const { socket, connected, errors } = await connectSocketIo(url, { transports, agent: agent as never });
  const pids = new Set<number>();
  let acks = 0;
  let lastTransport = '';
  if (connected) {
    for (let n = 0; n < 10; n++) {
      try {
        const answer = (await socket.timeout(20_000).emitWithAck('whoami')) as { pid: number; transport: string };
        acks++;
        pids.add(answer.pid);
        lastTransport = answer.transport;
      } catch (error) {
        errors.push(`whoami ${n}: ${(error as Error).message}`);
        break;
      }
      // Give the upgrade (polling → websocket) room to happen between messages.
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  socket.disconnect();
  agent.destroy();
  return { acks, pids, lastTransport, errors };
}

async function run(url: string, clients: number, transports: string[]): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  for (let at = 0; at < clients; at += 10) outcomes.push(...(await Promise.all(Array.from({ length: Math.min(10, clients - at) }, (_, k) => client(url, clientAddress(at + k), transports)))));
  return outcomes;
}

t.test('socket.io example, 50 long-polling clients through nginx (keep-alive upstream, X-Forwarded-For): every session stays on its worker', { skip: nginxMissing() ?? false }, async (t) => {
  const app = await startExample(t, 'socketio');
  const nginx = await startNginx(app.port, { location: 'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;' });
  t.teardown(() => nginx.stop());
  const outcomes = await run(`http://127.0.0.1:${nginx.port}`, 50, ['polling']);
  t.same(outcomes.flatMap((outcome) => outcome.errors), [], 'no connect error, no lost session');
  t.equal(outcomes.filter((outcome) => outcome.acks === 10).length, 50, 'every client got its 10 answers');
  t.equal(outcomes.filter((outcome) => outcome.pids.size === 1).length, 50, 'each from one worker');
  t.equal(new Set(outcomes.flatMap((outcome) => [...outcome.pids])).size, 2, 'clients on both workers');
});

t.test('socket.io example, 50 clients through HAProxy (send-proxy-v2): long-polling, then the upgrade, on one worker', async (t) => {
  const app = await startExample(t, 'socketio');
  const haproxy = await startHaproxyV2(t, app.port);
  if (haproxy === null) return t.skip('haproxy is not installed (.ci/run installs it)');
  const outcomes = await run(`http://127.0.0.1:${haproxy.port}`, 50, ['polling', 'websocket']);
  t.same(outcomes.flatMap((outcome) => outcome.errors), [], 'no connect error, no lost session');
  t.equal(outcomes.filter((outcome) => outcome.acks === 10 && outcome.pids.size === 1).length, 50, 'every client got 10 answers from one worker');
  t.equal(outcomes.filter((outcome) => outcome.lastTransport === 'websocket').length, 50, 'every client upgraded to a WebSocket on its worker');
  t.equal(new Set(outcomes.flatMap((outcome) => [...outcome.pids])).size, 2, 'clients on both workers');
});
