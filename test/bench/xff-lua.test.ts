import { spawn } from 'node:child_process';
import http from 'node:http';
import type net from 'node:net';
import { join } from 'node:path';
import t, { type Test as Tap } from 'tap';
import { which } from '../helpers/balancer.js';

/**
 * The wrk script behind every number of bench/compare.ts: what each load shape
 * really sends. A script that sent no X-Forwarded-For, or the same one on
 * every connection, would put every contender's load on one worker and still
 * print a table.
 */
const LUA = join(__dirname, '..', '..', 'bench', 'apps', 'xff.lua');
const POOL = /^198\.1[89]\.\d{1,3}\.\d{1,3}$/;

interface Seen {
  /** Per connection, the X-Forwarded-For values it carried. */
  readonly byConnection: Map<net.Socket, string[]>;
  readonly connectionHeaders: string[];
}

async function underWrk(t: Tap, args: readonly string[], extra: readonly string[]): Promise<Seen> {
  const byConnection = new Map<net.Socket, string[]>();
  const connectionHeaders: string[] = [];
  const server = http.createServer((req, res) => {
    const seen = byConnection.get(req.socket) ?? [];
    byConnection.set(req.socket, seen);
    seen.push(String(req.headers['x-forwarded-for']));
    connectionHeaders.push(String(req.headers.connection));
    res.end('ok');
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const port = (server.address() as net.AddressInfo).port;
  try {
    const out = await new Promise<string>((done, fail) => {
      const child = spawn('wrk', [...args, '-d', '1s', '-s', LUA, `http://127.0.0.1:${port}/`, ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.once('error', fail);
      child.once('exit', () => {
        clearTimeout(timer);
        done(text);
      });
    });
    const line = out.split('\n').find((l) => l.startsWith('BENCH_JSON '));
    t.ok(line, 'wrk printed its JSON summary');
    const summary = JSON.parse((line ?? 'BENCH_JSON {}').slice('BENCH_JSON '.length)) as { requests?: number };
    t.ok((summary.requests ?? 0) > 0, 'the summary counts requests');
  } finally {
    server.closeAllConnections();
    await new Promise<void>((done) => server.close(() => done()));
  }
  return { byConnection, connectionHeaders };
}

if (which('wrk') === null) {
  t.skip('wrk is not installed (apt-get install wrk; .ci/run does it)');
} else {
  t.test('keep-alive: a random client of the pool on every request', async (t) => {
    const { byConnection } = await underWrk(t, ['-t', '1', '-c', '4'], []);
    t.equal(byConnection.size, 4, 'four kept-alive connections');
    const all = [...byConnection.values()].flat();
    t.ok(all.every((value) => POOL.test(value)), 'every request carries a pool address');
    for (const values of byConnection.values()) t.ok(new Set(values).size > 1, 'a connection carries more than one client');
    t.ok(new Set(all).size > 100, `many clients in all (${new Set(all).size})`);
  });

  t.test('client: one fixed client per wrk thread, so per connection', async (t) => {
    const { byConnection } = await underWrk(t, ['-t', '4', '-c', '8'], ['--', 'client']);
    t.equal(byConnection.size, 8, 'eight kept-alive connections');
    const perConnection = [...byConnection.values()].map((values) => new Set(values));
    t.ok(
      perConnection.every((values) => values.size === 1),
      'every connection carries one client only',
    );
    const clients = new Set(perConnection.map((values) => [...values][0] as string));
    t.equal(clients.size, 4, 'four clients: one per thread, the same on its two connections');
    t.ok([...clients].every((value) => POOL.test(value)), 'pool addresses');
  });

  t.test('close: a new connection for every request', async (t) => {
    const { byConnection, connectionHeaders } = await underWrk(t, ['-t', '1', '-c', '2'], ['--', 'close']);
    t.ok(connectionHeaders.every((value) => value.toLowerCase() === 'close'), 'every request asks to close');
    t.ok([...byConnection.values()].every((values) => values.length === 1), 'one request per connection');
    t.ok(byConnection.size > 10, `many connections (${byConnection.size})`);
  });
}
