import t from 'tap';
import { DnsMembers } from '../../../src/master/cluster/dns-members.js';
import type { MemberRecord } from '../../../src/master/cluster/members.js';
import { pollUntil } from '../../helpers/balancer.js';
import { startDnsmasq } from '../../helpers/peers.js';

t.test('members from the A and AAAA records of a name, read again every interval (dnsmasq)', async (t) => {
  const dns = await startDnsmasq(['127.0.0.2 sticky.test', '127.0.0.3 sticky.test', '::1 sticky.test']);
  t.teardown(() => dns.stop());
  const source = new DnsMembers('sticky.test', 8181, 100, [dns.server]);
  t.teardown(() => source.stop());
  const lists: Array<readonly MemberRecord[]> = [];
  const errors: Error[] = [];
  await source.start((list) => lists.push(list), (error) => errors.push(error));
  t.ok(lists.length >= 1, 'the first read is done when start resolves');
  t.same(lists[0]?.map((m) => m.id).sort(), ['127.0.0.2:8181', '127.0.0.3:8181', '[::1]:8181']);
  t.ok(lists[0]?.every((m) => !m.draining));

  await dns.setHosts(['127.0.0.4 sticky.test']);
  await pollUntil(() => (lists.at(-1)?.map((m) => m.id).join() === '127.0.0.4:8181' ? true : undefined), 10_000);
  t.pass('a changed record set is seen at a later read (only A records: no AAAA is not an error)');
  t.same(errors, []);

  // The name gone (the server refuses it): an error, and no empty list replaces the last one.
  const before = lists.length;
  await dns.setHosts(['127.0.0.9 other.test']);
  await pollUntil(() => (errors.length > 0 ? true : undefined), 10_000);
  t.ok(lists.slice(before).every((list) => list.length > 0), 'no empty list reported for a failed read');
});

t.test('no name server answering: start still resolves, with an error', async (t) => {
  const source = new DnsMembers('sticky.test', 8181, 1000, ['127.0.0.1:9']);
  t.teardown(() => source.stop());
  const errors: Error[] = [];
  const lists: unknown[] = [];
  await source.start((list) => lists.push(list), (error) => errors.push(error));
  t.equal(lists.length, 0);
  t.equal(errors.length, 1);
});
