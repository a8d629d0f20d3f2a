import { createHash } from 'node:crypto';
import http from 'node:http';
import { Server as SocketIoServer } from 'socket.io';
import { WebSocketServer } from 'ws';

/**
 * The worker app of the chaos soak (bench/chaos.ts): every answer names the
 * process that gave it, as early as it can, so the soak can tell which
 * worker a failed operation was on.
 * - `POST /upload`: the head goes out at once with `x-pid`; the body's SHA-256
 *   (hex) when it ends.
 * - `/ws`: a WebSocket that says `{"pid":…}` first, then echoes every message.
 * - socket.io, polling only (every request of a session must reach this
 *   worker): a `message` is acknowledged with its payload and the pid.
 */
export default function chaosApp(): http.Server {
  const server = http.createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/upload') {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-pid': String(process.pid) });
      res.flushHeaders();
      const hash = createHash('sha256');
      req.on('data', (chunk: Buffer) => hash.update(chunk));
      req.on('end', () => res.end(hash.digest('hex')));
      return;
    }
    // socket.io answers its own path; anything else is a plain answer.
    if (req.url?.startsWith('/socket.io/')) return;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ pid: process.pid }));
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    if (req.url !== '/ws') return;
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.send(JSON.stringify({ pid: process.pid }));
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
  });
  const io = new SocketIoServer(server, { transports: ['polling'], pingInterval: 25_000, pingTimeout: 20_000 });
  io.on('connection', (socket) => {
    socket.on('message', (payload: unknown, ack: (answer: unknown) => void) => ack({ payload, pid: process.pid }));
  });
  return server;
}
