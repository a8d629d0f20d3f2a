import t from 'tap';
import type { ConnectionInfo } from '../../../src/shared/connection-info.js';
import { signStickyCookie } from '../../../src/shared/key/sticky-cookie.js';
import { placeKey } from '../../../src/shared/placement.js';
import type { RequestHead } from '../../../src/shared/protocol/http1.js';
import { hashKey } from '../../../src/shared/ring/farmhash.js';
import { pickSlot } from '../../../src/shared/ring/rendezvous.js';
import { destination, handbackKeyOf, readyPid, setPoolView, withKeyOf } from '../../../src/worker/reuse/destination.js';
import { resolvedConfig, reuseContext } from '../../helpers/worker.js';

const STICKY = { name: 'lb', secret: 'k'.repeat(32) };
const resolved = resolvedConfig({ stickyCookie: STICKY });
const ctx = reuseContext(resolved, 1);
const INFO: ConnectionInfo = { key: '198.51.100.1', keySource: 'forwarded', worker: 1, proxy: null, peer: '127.0.0.1', peerTrusted: true };

function head(forwardedFor: string, cookie?: string): RequestHead {
  return { method: 'GET', target: '/', version: '1.1', host: 'x', cookie, forwardedFor: [forwardedFor], forwarded: [], upgrade: undefined };
}

t.test('before the first pool view: this slot exactly for the connection’s own key', async (t) => {
  t.same(destination(head('198.51.100.1'), INFO, ctx), { key: { key: '198.51.100.1', source: 'forwarded' }, stickySlot: -1, slot: 1 });
  t.equal(destination(head('198.51.100.2'), INFO, ctx).slot, -1, 'another key: the master decides');
  t.equal(readyPid(0), 0);
});

t.test("with a pool view: the master's placement over it, the load bound included", async (t) => {
  setPoolView(3, [1, 1, 1], [100, 101, 102]);
  for (let i = 0; i < 50; i++) {
    const key = `203.0.113.${i}`;
    t.equal(destination(head(key), INFO, ctx).slot, pickSlot(hashKey(key), 3), key);
  }
  setPoolView(3, [1, 0, 1], [100, 0, 102], [1, 0, 0]);
  for (let i = 0; i < 50; i++) {
    const key = `203.0.113.${i}`;
    const wanted = placeKey(hashKey(key), { slotCount: 3, ready: Uint8Array.of(1, 0, 1), full: Uint8Array.of(1, 0, 0) }).slot;
    t.equal(destination(head(key), INFO, ctx).slot, wanted, `${key} with slot 1 down and slot 0 full`);
  }
  t.equal(readyPid(2), 102);
  t.equal(readyPid(1), 0, 'a slot not ready has no link');
  t.equal(readyPid(7), 0);
});

t.test('a valid sticky cookie pins its ready slot; one for a slot not ready is placed as without', async (t) => {
  setPoolView(3, [1, 1, 1], [100, 101, 102]);
  const now = Math.floor(Date.now() / 1000);
  const cookie = `lb=${signStickyCookie(2, now, { ...resolved.stickyCookie!, name: 'lb' })}`;
  const to = destination(head('198.51.100.9', cookie), INFO, ctx);
  t.same([to.slot, to.stickySlot], [2, 2]);
  t.same(handbackKeyOf(to), { key: '198.51.100.9', keySource: 'forwarded', stickySlot: 2 });
  t.same(withKeyOf(INFO, to), { ...INFO, key: '198.51.100.9', keySource: 'sticky' });
  setPoolView(3, [1, 1, 0], [100, 101, 0]);
  const down = destination(head('198.51.100.9', cookie), INFO, ctx);
  t.equal(down.stickySlot, -1);
  t.equal(down.slot, pickSlot(hashKey('198.51.100.9'), 3, Uint8Array.of(1, 1, 0)));
  const forged = destination(head('198.51.100.9', 'lb=2.1.AAAAAAAAAAAAAAAAAAAAAA'), INFO, ctx);
  t.equal(forged.stickySlot, -1, 'a forged cookie is ignored');
  t.equal(withKeyOf(INFO, destination(head('198.51.100.1'), INFO, ctx)), INFO, 'the same key and source: the same info');
});
