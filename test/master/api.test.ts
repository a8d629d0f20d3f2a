import { once } from 'node:events';
import { join } from 'node:path';
import net from 'node:net';
import t from 'tap';
import { BalancerStartError, startBalancer } from '../../src/index.js';
import { DEMO_APP, demoGet } from '../helpers/balancer.js';

t.setTimeout(120_000);

t.test('a bad config rejects with ERR_CONFIG and the path, before any worker starts', async (t) => {
  const error = await startBalancer({ workers: { count: 'two' as never } }).catch((caught: unknown) => caught);
  t.ok(error instanceof BalancerStartError, 'a BalancerStartError');
  t.equal((error as BalancerStartError).code, 'ERR_CONFIG');
  t.match((error as Error).message, /^workers\.count: /, 'names the path');
  const unknown = await startBalancer({ listen: { port: 0, hots: 'x' } as never }).catch((caught: unknown) => caught);
  t.match((unknown as Error).message, /listen: unknown key "hots"/);
});

t.test('startBalancer: listening with every worker ready; address, workers, scale, reload, close', async (t) => {
  const balancer = await startBalancer({ listen: { host: '127.0.0.1', port: 0 }, workers: { count: 2, app: DEMO_APP }, admin: false, log: { level: 'warn' } });
  const { port } = balancer.address();
  t.ok(port > 0, `listening on ${port}`);
  t.same(balancer.workers().map((worker) => worker.state), ['ready', 'ready'], 'both workers ready when it resolves');
  const first = await demoGet(port, { 'x-forwarded-for': '198.51.100.40' });
  t.equal(first.key, '198.51.100.40', 'serves, keyed by X-Forwarded-For');
  t.equal(await balancer.scale(3), true, 'scale(3) resolves true');
  t.equal(balancer.workers().filter((worker) => worker.state === 'ready').length, 3, 'three ready');
  const pidsBefore = balancer.workers().map((worker) => worker.pid);
  const reloaded = await balancer.reload();
  t.equal(reloaded.replaced, 3, 'reload() replaced every worker');
  t.equal(reloaded.failedSlot, null);
  const pidsAfter = balancer.workers().map((worker) => worker.pid);
  t.equal(pidsAfter.filter((pid) => pidsBefore.includes(pid)).length, 0, 'new pids in every slot');
  const again = await demoGet(port, { 'x-forwarded-for': '198.51.100.40' });
  t.equal(again.worker, (await demoGet(port, { 'x-forwarded-for': '198.51.100.40' })).worker, 'still sticky after the reload');
  await balancer.close();
  const refused = await new Promise<boolean>((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
  t.ok(refused, 'closed: the port refuses connections');
  t.same(balancer.workers().filter((worker) => worker.pid !== null && worker.state === 'ready'), [], 'no worker left');
});

t.test('reload(options) validates like the first start and applies the new config', async (t) => {
  const balancer = await startBalancer({ listen: { host: '127.0.0.1', port: 0 }, workers: { count: 1, app: DEMO_APP }, admin: false, log: { level: 'warn' } });
  t.teardown(() => balancer.close());
  await t.rejects(balancer.reload({ workers: { count: -1 } } as never), { code: 'ERR_CONFIG' }, 'a bad config is refused');
  const result = await balancer.reload({ listen: { host: '127.0.0.1', port: 0 }, workers: { count: 2, app: DEMO_APP }, admin: false, log: { level: 'warn' } });
  t.equal(result.replaced, 1, 'the one worker replaced');
  t.equal(balancer.config.workerCount, 2, 'the new config is in effect');
  t.equal(balancer.workers().filter((worker) => worker.state === 'ready').length, 2, 'workers.count followed');
});

t.test('an app that does not load rejects with ERR_APP_START and its stack; a port in use with ERR_LISTEN', async (t) => {
  const throwing = join(__dirname, '..', 'fixtures', 'throwing-app.js');
  const failed = await startBalancer({ listen: { host: '127.0.0.1', port: 0 }, workers: { count: 2, app: throwing }, admin: false, log: { level: 'silent' } }).catch((caught: unknown) => caught);
  t.ok(failed instanceof BalancerStartError);
  t.equal((failed as BalancerStartError).code, 'ERR_APP_START');
  t.match((failed as Error).message, /failed to load:\nError: boom at load\n\s+at loadConfiguration/);
  const holder = net.createServer().listen(0, '127.0.0.1');
  await once(holder, 'listening');
  t.teardown(() => holder.close());
  const port = (holder.address() as net.AddressInfo).port;
  const taken = await startBalancer({ listen: { host: '127.0.0.1', port }, workers: { count: 1, app: DEMO_APP }, admin: false, log: { level: 'silent' } }).catch((caught: unknown) => caught);
  t.match(taken, { code: 'ERR_LISTEN', message: `cannot listen on 127.0.0.1:${port}: EADDRINUSE (address already in use)` });
});
