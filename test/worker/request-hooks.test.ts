import http from 'node:http';
import type { Duplex } from 'node:stream';
import t from 'tap';
import { installRequestHooks, installUpgradeHooks, type RequestHook } from '../../src/worker/request-hooks.js';

const req = {} as http.IncomingMessage;
const res = {} as http.ServerResponse;

t.test('hooks run in order before the app; one that takes a request stops the rest, and serveHere resumes after it', async (t) => {
  const server = http.createServer();
  const order: string[] = [];
  server.on('request', () => order.push('app'));
  let held: (() => void) | null = null;
  const hooks: RequestHook[] = [
    () => (order.push('first'), false),
    (request, response, serveHere) => {
      order.push('second takes it');
      held = () => serveHere(request, response);
      return true;
    },
    () => (order.push('third'), false),
  ];
  installRequestHooks(server, hooks);
  server.emit('request', req, res);
  t.same(order, ['first', 'second takes it'], 'the app does not see a taken request');
  (held as unknown as () => void)();
  t.same(order, ['first', 'second takes it', 'third', 'app'], 'handed on: the hooks after it, then the app');
  order.length = 0;
  server.on('request', () => order.push('added later'));
  hooks[1] = () => false;
  server.emit('request', req, res);
  t.same(order, ['first', 'third', 'app', 'added later'], 'a listener the app adds later runs after them');
});

t.test('no hooks: the listeners are left as they are', async (t) => {
  const server = http.createServer();
  const app = (): void => {};
  server.on('request', app);
  installRequestHooks(server, []);
  t.same(server.listeners('request'), [app]);
});

t.test('upgrade hooks only where the app listens for upgrades; a hook that takes the socket stops the app', async (t) => {
  const plain = http.createServer();
  installUpgradeHooks(plain, [() => true]);
  t.equal(plain.listenerCount('upgrade'), 0, 'no upgrade listener: Node keeps treating an Upgrade as a plain request');
  const server = http.createServer();
  const seen: string[] = [];
  server.on('upgrade', () => seen.push('app'));
  let take = true;
  installUpgradeHooks(server, [() => (seen.push('hook'), take)]);
  server.emit('upgrade', req, {} as Duplex, Buffer.alloc(0));
  take = false;
  server.emit('upgrade', req, {} as Duplex, Buffer.alloc(0));
  t.same(seen, ['hook', 'hook', 'app']);
});
