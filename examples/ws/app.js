'use strict';
// A plain ws server: a room lives in one worker's memory. Clients of the same key
// (address) land on the same worker, so they meet in the same room.
const http = require('node:http');
const { WebSocketServer } = require('ws');

module.exports = () => {
  const server = http.createServer((_req, res) => res.end(`pid ${process.pid}\n`));
  const wss = new WebSocketServer({ server });
  const room = new Set();
  wss.on('connection', (ws) => {
    room.add(ws);
    ws.send(JSON.stringify({ pid: process.pid, inRoom: room.size }));
    ws.on('message', (data, isBinary) => {
      for (const peer of room) peer.send(data, { binary: isBinary });
    });
    ws.on('close', () => room.delete(ws));
  });
  return server;
};
