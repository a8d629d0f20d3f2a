import http from 'node:http';
import net from 'node:net';
import t, { type Test } from 'tap';
import { RESPONSE_RELAY, closeAfter, headWritten, responseInProgress, sentContinue, writeRelayed } from '../../src/node/outgoing.js';
import { canary } from './canary.js';

async function serve(t: Test, handler: http.RequestListener): Promise<number> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  return (server.address() as net.AddressInfo).port;
}

/** Writes raw bytes and collects what comes back until the server closes or `until` matches. */
async function exchange(port: number, bytes: string, until: (text: string) => boolean): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  let text = '';
  await new Promise<void>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (until(text)) resolve();
    });
    socket.once('close', () => resolve());
    socket.write(bytes);
  });
  socket.destroy();
  return text;
}

const RELAYED = 'HTTP/1.1 200 OK\r\ncontent-length: 7\r\nx-relayed: yes\r\n\r\nrelayed';

t.test('ServerResponse _header/_headerSent/_writeRaw: relayed bytes keep their place among pipelined responses', async (t) => {
  canary(t, 'ServerResponse _writeRaw/_header/_headerSent/_last', RESPONSE_RELAY, 'in use (unless STICKY_NODE_PUBLIC names response-relay)');
  const held: http.ServerResponse[] = [];
  let inProgress: boolean | null = null;
  const port = await serve(t, (req, res) => {
    if (req.url === '/first') {
      // The first answer waits: the relayed second must queue behind it.
      held.push(res);
      inProgress = responseInProgress(res.socket as net.Socket);
      return;
    }
    t.equal(headWritten(res), false, 'no head before the relay');
    writeRelayed(res, Buffer.from(RELAYED), () => {});
    canary(t, 'ServerResponse _header', headWritten(res), 'marked written by the relay');
    res.end();
    setTimeout(() => held.shift()?.end('first'), 50);
  });
  const text = await exchange(port, 'GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n', (seen) => seen.endsWith('relayed'));
  canary(t, 'socket._httpMessage', inProgress === true, 'set while the server writes a response');
  const firstAt = text.indexOf('first');
  const relayedAt = text.indexOf(RELAYED);
  canary(t, 'ServerResponse _writeRaw', firstAt >= 0 && relayedAt > firstAt, `the relayed response follows the first, byte for byte (got ${JSON.stringify(text)})`);
  t.equal(text.split('HTTP/1.1 ').length - 1, 2, 'two responses, no head of Node\'s own for the relayed one');
});

t.test('ServerResponse _last: the connection closes after a relayed response', async (t) => {
  const port = await serve(t, (_req, res) => {
    writeRelayed(res, Buffer.from(RELAYED), () => {});
    closeAfter(res);
    res.end();
  });
  const socket = net.connect(port, '127.0.0.1');
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
  socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  const closed = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 5000);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  canary(t, 'ServerResponse _last', closed && text === RELAYED, `the server closed after the response (closed ${closed}, got ${JSON.stringify(text)})`);
});

t.test('ServerResponse _sent100: Node answered Expect: 100-continue itself', async (t) => {
  const seen: boolean[] = [];
  const port = await serve(t, (req, res) => {
    seen.push(sentContinue(res));
    req.resume();
    req.on('end', () => res.end('done'));
  });
  await exchange(port, 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n', (text) => text.includes('100 Continue'));
  await exchange(port, 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok', (text) => text.endsWith('done'));
  canary(t, 'ServerResponse _sent100', seen[0] === true, 'true after Node wrote 100 Continue');
  t.equal(seen[1], false, 'false without Expect');
});
