import t from 'tap';
import WebSocket from 'ws';
import { startExample } from '../helpers/examples.js';

/** Opens a WebSocket with this X-Forwarded-For and returns it with its greeting. */
async function open(port: number, xff: string): Promise<{ ws: WebSocket; greeting: { pid: number; inRoom: number } }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { headers: { 'x-forwarded-for': xff } });
  const greeting = await new Promise<{ pid: number; inRoom: number }>((resolve, reject) => {
    ws.once('message', (data) => resolve(JSON.parse(String(data)) as { pid: number; inRoom: number }));
    ws.once('error', reject);
  });
  return { ws, greeting };
}

t.test('ws example: two connections of one client meet in one worker\'s room; a message reaches both', async (t) => {
  const app = await startExample(t, 'ws');
  const first = await open(app.port, '198.51.100.7');
  const second = await open(app.port, '198.51.100.7');
  t.equal(second.greeting.pid, first.greeting.pid, 'the same worker');
  t.equal(second.greeting.inRoom, 2, 'the second finds the first in the room');
  const heard = new Promise<string>((resolve) => first.ws.once('message', (data) => resolve(String(data))));
  second.ws.send('hello room');
  t.equal(await heard, 'hello room', 'the room is shared');
  const pids = new Set<number>();
  for (let i = 0; i < 20; i++) {
    const other = await open(app.port, `203.0.113.${i + 1}`);
    pids.add(other.greeting.pid);
    other.ws.close();
  }
  t.equal(pids.size, 2, 'other clients spread over both workers');
  first.ws.close();
  second.ws.close();
});
