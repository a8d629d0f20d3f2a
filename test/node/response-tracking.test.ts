import http from 'node:http';
import t from 'tap';
import { ResponseTrackingDuplex } from '../../src/node/response-tracking.js';
import { canary } from './canary.js';

/** A socket stand-in that records what the server writes and each finished response. */
class Recorder extends ResponseTrackingDuplex {
  finished = 0;
  written = '';
  constructor() {
    super({ allowHalfOpen: true, decodeStrings: false });
  }
  protected onResponseFinished(): void {
    this.finished++;
  }
  override _read(): void {}
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, done: () => void): void {
    this.written += chunk.toString();
    done();
  }
}

async function until(predicate: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !predicate(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
}

t.test("http.Server sets and clears socket._httpMessage around each response, the app's and its own", async (t) => {
  const server = http.createServer((req, res) => {
    if (req.url === '/slow') setTimeout(() => res.end('slow'), 30);
    else res.end('fast');
  });
  const socket = new Recorder();
  server.emit('connection', socket);
  socket.push('GET /fast HTTP/1.1\r\nHost: x\r\n\r\nGET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
  await until(() => socket.finished === 2);
  canary(t, 'socket._httpMessage (assignSocket/detachSocket)', socket.finished === 2, `two responses finished (saw ${socket.finished})`);
  t.equal(socket.responding, false, 'none in progress after both');
  t.match(socket.written, /fast[\s\S]*slow$/, 'both answered, in order');
  server.close();
});

t.test('a request Node answers itself (no Host on HTTP/1.1: 400) is not a response of the app', async (t) => {
  let requests = 0;
  const server = http.createServer((_req, res) => {
    requests++;
    res.end();
  });
  const socket = new Recorder();
  server.emit('connection', socket);
  socket.push('GET / HTTP/1.1\r\n\r\n');
  await until(() => socket.written.length > 0);
  t.match(socket.written, /^HTTP\/1\.1 400/, 'Node answered 400');
  t.equal(requests, 0, 'the app saw nothing');
  server.close();
});
