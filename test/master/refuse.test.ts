import net from 'node:net';
import pino from 'pino';
import t from 'tap';
import { MasterMetrics } from '../../src/master/admin/metrics.js';
import { socketConn } from '../../src/master/client-conn.js';
import { Refuser } from '../../src/master/refuse.js';

/** A loopback connection: the client's socket and the server's, paused as the master keeps it. */
async function pair(t: Tap.Test): Promise<{ client: net.Socket; accepted: net.Socket }> {
  let accepted: net.Socket | null = null;
  const server = net.createServer({ pauseOnConnect: true }, (socket) => (accepted = socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise((resolve) => client.once('connect', resolve));
  while (accepted === null) await new Promise((resolve) => setImmediate(resolve));
  server.close();
  t.teardown(() => {
    client.destroy();
    (accepted as net.Socket | null)?.destroy();
  });
  return { client, accepted };
}

async function refusedCount(metrics: MasterMetrics, reason: string): Promise<number> {
  const family = (await metrics.registry.getMetricsAsJSON()).find((metric) => metric.name === 'sticky_refused_connections_total');
  return (family?.values ?? []).filter((value) => value.labels.reason === reason).reduce((sum, value) => sum + value.value, 0);
}

t.test('refuse: closed without a byte, counted by its code, logged at a bounded rate with the client', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  const metrics = new MasterMetrics();
  const refuser = new Refuser(metrics, log);
  const { client, accepted } = await pair(t);
  const received: Buffer[] = [];
  client.on('data', (chunk: Buffer) => received.push(chunk));
  const closed = new Promise((resolve) => client.once('close', resolve));
  client.on('error', () => {});
  refuser.refuse(socketConn(accepted), '198.51.100.7', 'ERR_PEEK_TIMEOUT');
  await closed;
  t.equal(Buffer.concat(received).length, 0, 'not one byte');
  t.equal(await refusedCount(metrics, 'ERR_PEEK_TIMEOUT'), 1);
  t.match(lines[0], { client: '198.51.100.7', reason: 'ERR_PEEK_TIMEOUT', suppressed: 0, msg: 'connection refused' });
  for (let i = 0; i < 1000; i++) refuser.counted('ERR_PEEK_TIMEOUT', { client: 'x', reason: 'ERR_PEEK_TIMEOUT' }, 'connection refused');
  t.equal(await refusedCount(metrics, 'ERR_PEEK_TIMEOUT'), 1001, 'every refusal counted');
  t.ok(lines.length < 50, `but only ${lines.length} lines logged`);
});

t.test('answerAndClose: the client reads the whole answer, then the close (the master drops what it still sends)', async (t) => {
  const refuser = new Refuser(new MasterMetrics(), pino({ level: 'silent' }));
  const { client, accepted } = await pair(t);
  const received: Buffer[] = [];
  client.on('data', (chunk: Buffer) => received.push(chunk));
  const ended = new Promise((resolve) => client.once('end', resolve));
  const answer = Buffer.from('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
  refuser.answerAndClose(socketConn(accepted), answer);
  client.write('more bytes the master reads and drops');
  await ended;
  t.ok(Buffer.concat(received).equals(answer));
});
