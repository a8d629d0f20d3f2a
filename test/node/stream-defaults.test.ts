import http from 'node:http';
import { Duplex, getDefaultHighWaterMark } from 'node:stream';
import t from 'tap';
import { STAND_IN_HIGH_WATER_MARK } from '../../src/worker/reuse/stand-in-socket.js';

// Public behaviour the link's flow control rests on: a stand-in's high-water
// mark is its own, and the app's request inherits it from the socket.
t.test("IncomingMessage takes its high-water mark from its socket's readableHighWaterMark", async (t) => {
  const socket = new Duplex({ readableHighWaterMark: STAND_IN_HIGH_WATER_MARK, read() {}, write(_chunk, _encoding, done) { done(); } });
  const request = new http.IncomingMessage(socket as never);
  t.equal(request.readableHighWaterMark, STAND_IN_HIGH_WATER_MARK, `on Node ${process.version}`);
  t.ok(getDefaultHighWaterMark(false) >= STAND_IN_HIGH_WATER_MARK, `the default (${getDefaultHighWaterMark(false)}) is not below the stand-in's`);
});
