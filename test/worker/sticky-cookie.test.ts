import http from 'node:http';
import type net from 'node:net';
import t from 'tap';
import { nowSeconds, signStickyCookie, verifyStickyCookie } from '../../src/shared/key/sticky-cookie.js';
import { installRequestHooks } from '../../src/worker/request-hooks.js';
import { stickyCookieHook } from '../../src/worker/sticky-cookie.js';
import { resolvedConfig } from '../helpers/worker.js';

const rules = resolvedConfig({ stickyCookie: { name: 'lb', secret: 's'.repeat(32) } }).stickyCookie!;
const SLOT = 1;

/** How the app sets its own cookie, by request path. */
const APP_COOKIES: Record<string, (res: http.ServerResponse) => void> = {
  '/none': (res) => res.end('x'),
  '/set-header': (res) => {
    res.setHeader('Set-Cookie', ['sid=1', 'theme=dark']);
    res.end('x');
  },
  '/head-object': (res) => {
    res.writeHead(200, { 'set-cookie': 'sid=2' });
    res.end('x');
  },
  '/head-object-message': (res) => {
    res.writeHead(200, 'Fine', { 'Set-Cookie': ['sid=3', 'a=b'] });
    res.end('x');
  },
  '/head-array': (res) => {
    res.writeHead(200, ['Set-Cookie', 'sid=4', 'Content-Type', 'text/plain']);
    res.end('x');
  },
  '/head-array-without': (res) => {
    res.setHeader('Set-Cookie', 'sid=5');
    res.writeHead(200, ['Content-Type', 'text/plain']);
    res.end('x');
  },
};

async function server(t: Tap.Test, secure = false): Promise<number> {
  const app = http.createServer((req, res) => (APP_COOKIES[req.url ?? ''] ?? APP_COOKIES['/none']!)(res));
  installRequestHooks(app as net.Server, [stickyCookieHook(rules, SLOT, secure)]);
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  t.teardown(() => app.close());
  return (app.address() as net.AddressInfo).port;
}

function get(port: number, path: string, cookie?: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false, headers: cookie === undefined ? {} : { cookie } }, (res) => {
        res.resume();
        resolve(res.headers['set-cookie'] ?? []);
      })
      .on('error', reject);
  });
}

/** The slot our cookie in `setCookies` names, or null when there is none. */
function ourSlot(setCookies: string[]): number | null {
  const ours = setCookies.find((c) => c.startsWith('lb='));
  if (ours === undefined) return null;
  const verdict = verifyStickyCookie(ours.slice(3).split(';')[0] ?? '', nowSeconds(), rules);
  return verdict.kind === 'valid' ? verdict.slot : -1;
}

t.test('without a valid cookie for this slot: ours is added, next to every cookie the app set, whichever way it set them', async (t) => {
  const port = await server(t);
  const expected: Record<string, string[]> = {
    '/none': [],
    '/set-header': ['sid=1', 'theme=dark'],
    '/head-object': ['sid=2'],
    '/head-object-message': ['sid=3', 'a=b'],
    '/head-array': ['sid=4'],
    '/head-array-without': ['sid=5'],
  };
  for (const [path, appCookies] of Object.entries(expected)) {
    const cookies = await get(port, path);
    t.same(cookies.filter((c) => !c.startsWith('lb=')), appCookies, `${path}: the app's cookies are all there`);
    t.equal(ourSlot(cookies), SLOT, `${path}: ours names this slot, signed`);
    t.match(cookies.find((c) => c.startsWith('lb=')), /HttpOnly/);
  }
});

t.test('a valid fresh cookie for this slot gets none; one for another slot, a forged one or none at all gets a new one', async (t) => {
  const port = await server(t, true);
  const now = nowSeconds();
  t.equal(ourSlot(await get(port, '/none', `lb=${signStickyCookie(SLOT, now, rules)}`)), null, 'this slot, fresh: nothing added');
  t.equal(ourSlot(await get(port, '/none', `lb=${signStickyCookie(0, now, rules)}`)), SLOT, 'another slot: re-pinned here');
  t.equal(ourSlot(await get(port, '/none', 'lb=1.1.AAAAAAAAAAAAAAAAAAAAAA')), SLOT, 'forged: replaced');
  const cookie = (await get(port, '/none')).find((c) => c.startsWith('lb='));
  t.match(cookie, /; Secure/, 'under TLS the cookie is Secure');
});
