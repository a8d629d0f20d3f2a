import http from 'node:http';
import { WebSocketServer } from 'ws';
import { connectionInfo } from '../src/shared/connection-info.js';

/**
 * The demo app: GET any path answers who served it and who
 * asked; POST /echo returns the body byte for byte; /ws is a WebSocket echo.
 */
const server = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/echo') {
    const length = req.headers['content-length'];
    res.writeHead(200, {
      'content-type': req.headers['content-type'] ?? 'application/octet-stream',
      // Same framing as the request when it has a length, so the echo is the body itself.
      ...(length === undefined ? {} : { 'content-length': length }),
    });
    req.pipe(res);
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    req.resume();
    res.writeHead(405, { allow: 'GET, HEAD, POST', 'content-type': 'text/plain' });
    res.end('method not allowed\n');
    return;
  }
  const info = connectionInfo(req.socket);
  const xff = req.headers['x-forwarded-for'];
  const body = JSON.stringify({
    worker: info?.worker ?? Number(process.env.STICKY_SLOT ?? 0),
    pid: process.pid,
    clientIp: req.socket.remoteAddress ?? null,
    clientPort: req.socket.remotePort ?? null,
    key: info?.key ?? null,
    keySource: info?.keySource ?? null,
    xff: xff === undefined ? null : Array.isArray(xff) ? xff.join(', ') : xff,
    // With many nodes: the node serving the request, and the one it entered through when that one forwarded it.
    ...(info?.node === undefined ? {} : { node: info.node, via: info.via ?? null }),
  });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
});

const wss = new WebSocketServer({ noServer: true });
server.on('upgrade', (req, socket, head) => {
  if (req.url !== '/ws') {
    socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
});

export default server;
