import http from 'node:http';
import type net from 'node:net';
import t from 'tap';
import { chunkBytes, StandInSocket, writeChunk, type OutChunk, type StandInOwner } from '../../../src/worker/reuse/stand-in-socket.js';

/** An owner that records what the app's server does with the stand-in. */
function owner() {
  const calls = { written: [] as OutChunk[], responses: 0, reads: 0, final: 0, destroyed: 0, timeouts: [] as number[], noDelay: [] as Array<boolean | undefined> };
  const socket = {
    setTimeout: (ms: number) => calls.timeouts.push(ms),
    setNoDelay: (value?: boolean) => calls.noDelay.push(value),
    setKeepAlive: () => {},
  } as unknown as net.Socket;
  const me: StandInOwner = {
    socket,
    endpoints: { remoteAddress: '198.51.100.7', remotePort: 5555, remoteFamily: 'IPv4', localAddress: '10.0.0.1', localPort: 443 },
    onResponseDone: () => calls.responses++,
    onStandInRead: () => calls.reads++,
    writeOut: (chunks, done) => {
      calls.written.push(...chunks);
      done(null);
    },
    onStandInFinal: () => calls.final++,
    onStandInDestroy: () => calls.destroyed++,
  };
  return { me, calls };
}

const text = (chunks: OutChunk[]): string => chunks.map((chunk) => (Buffer.isBuffer(chunk) ? chunk.toString('latin1') : Buffer.from(chunk.text, chunk.encoding).toString('latin1'))).join('');

t.test("the app's server reads what is fed, sees the owner's addresses, and each finished response is reported once", async (t) => {
  const { me, calls } = owner();
  const seen: Array<{ address?: string; port?: number; local?: string }> = [];
  const server = http.createServer((req, res) => {
    seen.push({ address: req.socket.remoteAddress, port: req.socket.remotePort, local: req.socket.localAddress });
    res.end(`hello ${req.url}`);
  });
  const standIn = new StandInSocket(me);
  server.emit('connection', standIn);
  standIn.push(Buffer.from('GET /a HTTP/1.1\r\nhost: x\r\n\r\nGET /b HTTP/1.1\r\nhost: x\r\n\r\n'));
  for (let i = 0; i < 200 && calls.responses < 2; i++) await new Promise((resolve) => setTimeout(resolve, 5));
  t.equal(calls.responses, 2, 'two responses, each reported once');
  t.same(seen, [{ address: '198.51.100.7', port: 5555, local: '10.0.0.1' }, { address: '198.51.100.7', port: 5555, local: '10.0.0.1' }]);
  const out = text(calls.written);
  t.match(out, /^HTTP\/1\.1 200 OK\r\n[\s\S]*hello \/a[\s\S]*HTTP\/1\.1 200 OK\r\n[\s\S]*hello \/b$/, 'both responses, in order');
  t.ok(calls.written.some((chunk) => !Buffer.isBuffer(chunk)), 'heads pass as strings with their encoding, not converted');
  standIn.setNoDelay(true);
  t.same(calls.noDelay.at(-1), true, 'socket options too');
  standIn.setTimeout(1234);
  t.same(calls.timeouts.at(-1), 1234, "timeouts go to the owner's real stream");
  t.same(standIn.address(), { address: '10.0.0.1', family: 'IPv4', port: 443 });
  standIn.end();
  standIn.destroy();
  t.equal(calls.destroyed, 1);
  server.close();
});

t.test('writeChunk and chunkBytes take strings with their encoding as net.Socket does', async (t) => {
  const writes: unknown[][] = [];
  const socket = { write: (...args: unknown[]) => (writes.push(args), true) } as unknown as net.Socket;
  writeChunk(socket, Buffer.from('ab'));
  writeChunk(socket, { text: 'é', encoding: 'utf8' });
  t.same(writes, [[Buffer.from('ab')], ['é', 'utf8']]);
  t.equal(chunkBytes({ text: 'é', encoding: 'utf8' }), 2);
  t.equal(chunkBytes({ text: 'é', encoding: 'latin1' }), 1);
  t.equal(chunkBytes(Buffer.alloc(7)), 7);
});
