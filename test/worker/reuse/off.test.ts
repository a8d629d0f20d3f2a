import t from 'tap';
import { hashKey } from '../../../src/shared/ring/farmhash.js';
import { pickSlot } from '../../../src/shared/ring/rendezvous.js';
import { setPoolView } from '../../../src/worker/reuse/destination.js';
import { offWorkerRequests } from '../../../src/worker/reuse/metrics.js';
import { offRequestHook } from '../../../src/worker/reuse/off.js';
import { exchange, PROXIED, resolvedConfig, reuseContext, socketWith } from '../../helpers/worker.js';

const resolved = resolvedConfig({});

t.test('"off": nothing changes, but a later request of another worker\'s key is counted', async (t) => {
  setPoolView(2, [1, 1], [10, 11]);
  const hook = offRequestHook(reuseContext(resolved));
  let own = '';
  let other = '';
  for (let i = 0; other === '' || own === ''; i++) {
    const key = `203.0.113.${i}`;
    if (pickSlot(hashKey(key), 2) === 0) own ||= key;
    else other ||= key;
  }
  const before = (await offWorkerRequests.get()).values[0]?.value ?? 0;
  const socket = socketWith(PROXIED);
  for (const key of [other, own, other]) {
    const { req, res, headers } = exchange(socket, key);
    t.equal(hook(req, res), false);
    t.same(headers, {});
  }
  const after = (await offWorkerRequests.get()).values[0]?.value ?? 0;
  t.equal(after - before, 1, 'the first request is the connection’s own; of the later two, one belongs elsewhere');
});
