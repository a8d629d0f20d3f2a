/**
 * One process, no hand-off: the app listening by itself (the ceiling for the
 * hand-off rate on one core, and what one worker does with keep-alive).
 *
 *   node dist/bench/apps/single.js PORT
 */
import http from 'node:http';
import app from './app.js';
import { announceReady, launchArgs } from './launch.js';

const { port } = launchArgs();
http.createServer(app).listen(port, '127.0.0.1', () => announceReady(port));
