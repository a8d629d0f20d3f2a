import t from 'tap';
import { closeRequestHook } from '../../../src/worker/reuse/close.js';
import { exchange, PROXIED, resolvedConfig, socketWith } from '../../helpers/worker.js';

const resolved = resolvedConfig({});

t.test('"close": Connection: close on connections that may carry other clients, nothing on the others', async (t) => {
  const hook = closeRequestHook(resolved.key, false);
  const proxied = exchange(socketWith(PROXIED));
  t.equal(hook(proxied.req, proxied.res), false, 'the request goes on to the app');
  t.equal(proxied.headers.connection, 'close');
  t.equal(proxied.res.shouldKeepAlive, false);
  for (const info of [null, { ...PROXIED, peerTrusted: false }, { ...PROXIED, keySource: 'proxy' as const }]) {
    const other = exchange(socketWith(info));
    hook(other.req, other.res);
    t.same(other.headers, {}, `untouched: ${JSON.stringify(info)}`);
  }
  const h2 = exchange(socketWith(PROXIED));
  (h2.req as { httpVersionMajor: number }).httpVersionMajor = 2;
  hook(h2.req, h2.res);
  t.same(h2.headers, {}, 'HTTP/2 has no Connection header');
});
