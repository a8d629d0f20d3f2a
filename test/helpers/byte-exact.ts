import { randomBytes } from 'node:crypto';
import https from 'node:https';
import WebSocket from 'ws';
import { connect, readAll, writeSplit } from './balancer.js';

/**
 * The byte-exactness checks every hand-off path must pass (the default one in
 * test/integration, each public path in test/node): they send, and return
 * what came back for the caller to assert.
 */

/** What a 1 MiB POST to /echo got back. */
export interface EchoResult {
  readonly statusLine: string;
  readonly sent: Buffer;
  readonly received: Buffer;
}

/** A 1 MiB POST to the demo app's /echo, its first packet (head + 300 body bytes) split at `offsets`, then the rest. */
export async function splitPost(port: number, offsets: readonly number[]): Promise<EchoResult> {
  const body = randomBytes(1 << 20);
  const head = Buffer.from(`POST /echo HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/octet-stream\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`);
  const request = Buffer.concat([head, body]);
  const socket = await connect(port);
  const response = readAll(socket);
  await writeSplit(socket, request.subarray(0, head.length + 300), offsets);
  socket.end(request.subarray(head.length + 300));
  const bytes = await response;
  const split = bytes.indexOf('\r\n\r\n');
  return { statusLine: bytes.subarray(0, split).toString().split('\r\n')[0] ?? '', sent: body, received: bytes.subarray(split + 4) };
}

/** Three pipelined requests (GET, POST "hello", GET with close) in one first packet; the whole answer as text. */
export async function pipelined(port: number): Promise<string> {
  const socket = await connect(port);
  const response = readAll(socket);
  socket.end(
    'GET /one HTTP/1.1\r\nhost: x\r\nx-forwarded-for: 198.51.100.7\r\n\r\n' +
      'POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello' +
      'GET /three HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n',
  );
  return (await response).toString('latin1');
}

/** A WebSocket to the demo app's /ws (`scheme` ws or wss): a 100 kB binary message and a text one, echoed. */
export async function webSocketEcho(port: number, options: { scheme?: 'ws' | 'wss'; ca?: Buffer } = {}): Promise<{ binaryIntact: boolean; text: string }> {
  const ws = new WebSocket(`${options.scheme ?? 'ws'}://127.0.0.1:${port}/ws`, { headers: { 'x-forwarded-for': '198.51.100.9' }, ca: options.ca, servername: 'localhost' });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const payload = randomBytes(100_000);
  const echoed = new Promise<Buffer>((resolve) => ws.once('message', (data) => resolve(data as Buffer)));
  ws.send(payload);
  const binaryIntact = (await echoed).equals(payload);
  const text = new Promise<string>((resolve) => ws.once('message', (data) => resolve(String(data))));
  ws.send('héllo');
  const result = { binaryIntact, text: await text };
  ws.close();
  return result;
}

/** A 1 MiB POST to /echo over TLS (Node's https client, the test CA); the body that came back. */
export function tlsPost(port: number, ca: Buffer): Promise<{ sent: Buffer; received: Buffer; status: number }> {
  const body = randomBytes(1 << 20);
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, path: '/echo', method: 'POST', ca, servername: 'localhost', agent: false, headers: { 'content-length': body.length, connection: 'close' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ sent: body, received: Buffer.concat(chunks), status: res.statusCode ?? 0 }));
      },
    );
    req.on('error', reject);
    // Split writes: the body crosses many segments, as a real upload does.
    for (let at = 0; at < body.length; at += 7777) req.write(body.subarray(at, at + 7777));
    req.end();
  });
}
