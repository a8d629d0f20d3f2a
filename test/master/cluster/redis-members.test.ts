import { Redis } from 'ioredis';
import t from 'tap';
import type { MemberRecord } from '../../../src/master/cluster/members.js';
import { RedisMembers } from '../../../src/master/cluster/redis-members.js';
import { pollUntil } from '../../helpers/balancer.js';
import { startRedis } from '../../helpers/peers.js';

t.test('heartbeats with a TTL, a draining flag, and a clean leave (redis-server)', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const views = new Map<string, Array<readonly MemberRecord[]>>();
  const nodes = ['127.0.0.2:8181', '127.0.0.3:8181', '[::1]:8181'].map((id) => {
    const source = new RedisMembers(redis.url, id, 600, 50, 'test:node:');
    views.set(id, []);
    return { id, source };
  });
  for (const { source } of nodes) t.teardown(() => source.stop());
  for (const { id, source } of nodes) await source.start((list) => views.get(id)?.push(list), (error) => t.fail(error.message));
  const latest = (id: string): string => (views.get(id)?.at(-1) ?? []).map((m) => `${m.id}${m.draining ? ' draining' : ''}`).sort().join(', ');
  const all = '127.0.0.2:8181, 127.0.0.3:8181, [::1]:8181';
  await pollUntil(() => (nodes.every(({ id }) => latest(id) === all) ? true : undefined), 10_000);
  t.pass('every node sees all three');

  // Keys of another cluster under another prefix are not members.
  const other = new Redis(redis.url);
  t.teardown(() => other.quit());
  await other.set('elsewhere:node:10.0.0.1:1', '{"draining":false}');

  await nodes[1]?.source.drain();
  await pollUntil(() => (latest('127.0.0.2:8181') === '127.0.0.2:8181, 127.0.0.3:8181 draining, [::1]:8181' ? true : undefined), 10_000);
  t.pass('a draining node is seen as draining');

  await nodes[2]?.source.stop();
  await pollUntil(() => (latest('127.0.0.2:8181') === '127.0.0.2:8181, 127.0.0.3:8181 draining' ? true : undefined), 10_000);
  t.pass('a node that stops leaves at once (its key is deleted)');

  // A node that dies without a word: its heartbeat key expires after the TTL.
  const ghost = new RedisMembers(redis.url, '127.0.0.9:1', 600, 50, 'test:node:');
  await ghost.start(() => {}, () => {});
  await pollUntil(() => (latest('127.0.0.2:8181').includes('127.0.0.9:1') ? true : undefined), 10_000);
  // Stop its timers without deleting its key: as if killed.
  (ghost as unknown as { timers: NodeJS.Timeout[] }).timers.forEach((timer) => clearInterval(timer));
  const died = Date.now();
  await pollUntil(() => (!latest('127.0.0.2:8181').includes('127.0.0.9:1') ? true : undefined), 10_000);
  t.ok(Date.now() - died < 600 + 50 + 500, `gone within TTL + interval (${Date.now() - died} ms)`);
  await (ghost as unknown as { client: Redis }).client.quit();
});

t.test('Redis away: start resolves, the errors are reported, no list is made up', async (t) => {
  const redis = await startRedis();
  const url = redis.url;
  await redis.stop();
  const source = new RedisMembers(url, 'a:1', 1000, 50, 'test:node:');
  t.teardown(() => source.stop());
  const errors: Error[] = [];
  const lists: Array<readonly MemberRecord[]> = [];
  await source.start((list) => lists.push(list), (error) => errors.push(error));
  t.ok(errors.length > 0, 'errors, not a throw');
  t.equal(lists.length, 0, 'no list from a Redis that is not there');
});
