'use strict';
// socket.io in the workers: a client starts on HTTP long-polling (many requests,
// all of which must reach the worker holding its engine.io session), then upgrades
// to a WebSocket on the same worker.
const http = require('node:http');
const { Server } = require('socket.io');

module.exports = () => {
  const server = http.createServer();
  const io = new Server(server);
  io.on('connection', (socket) => {
    socket.on('whoami', (ack) => ack({ pid: process.pid, transport: socket.conn.transport.name }));
  });
  return server;
};
