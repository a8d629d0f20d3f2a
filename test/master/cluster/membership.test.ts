import pino from 'pino';
import { Registry } from 'prom-client';
import t from 'tap';
import { Membership } from '../../../src/master/cluster/membership.js';
import { ClusterMetrics } from '../../../src/master/cluster/metrics.js';
import { memberId, parseMemberId, StaticMembers } from '../../../src/master/cluster/members.js';
import { hashKey } from '../../../src/shared/ring/farmhash.js';

function membership(self = 'a:1') {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  const registry = new Registry();
  const metrics = new ClusterMetrics(registry);
  return { members: new Membership(self, log, metrics), lines, registry };
}

const HASHES = Array.from({ length: 2000 }, (_, i) => hashKey(`client-${i}`));

async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const value = metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return value?.value ?? 0;
}

t.test('one log line and one count per change; none for the same list again', async (t) => {
  const { members, lines, registry } = membership();
  members.update([{ id: 'a:1', draining: false }, { id: 'b:1', draining: false }]);
  members.update([{ id: 'b:1', draining: false }, { id: 'a:1', draining: false }]);
  members.update([{ id: 'a:1', draining: false }, { id: 'b:1', draining: true }, { id: 'c:1', draining: false }]);
  const changes = lines.filter((line) => line.msg === 'cluster membership changed');
  t.equal(changes.length, 2);
  t.same(changes[1]?.joined, ['c:1']);
  t.same(changes[1]?.draining, ['b:1']);
  t.equal(await metricValue(registry, 'sticky_cluster_membership_changes_total'), 2);
  t.same(members.view(), [{ id: 'a:1', state: 'ready' }, { id: 'b:1', state: 'draining' }, { id: 'c:1', state: 'ready' }]);
  t.equal(await metricValue(registry, 'sticky_cluster_members', { state: 'draining' }), 1);
  // A draining member owns nothing new.
  t.ok(HASHES.every((hash) => members.owner(hash) !== 'b:1'));
});

t.test('an unreachable peer: its keys go to their next node, and come back once it is reached again', async (t) => {
  const { members, lines } = membership();
  members.update(['a:1', 'b:1', 'c:1'].map((id) => ({ id, draining: false })));
  const before = HASHES.map((hash) => members.owner(hash));
  members.markUnreachable('b:1');
  const during = HASHES.map((hash) => members.owner(hash));
  t.ok(during.every((owner) => owner !== 'b:1'));
  t.ok(before.every((owner, i) => owner === 'b:1' || during[i] === owner), "only b's keys moved");
  t.equal(members.view().find((m) => m.id === 'b:1')?.state, 'unreachable');
  t.equal(lines.filter((line) => line.msg === 'peer unreachable; its keys go to their next node').length, 1);
  members.markReachable('b:1');
  t.same(HASHES.map((hash) => members.owner(hash)), before);
});

t.test('an unreachable mark runs out by itself: the peer is tried again', async (t) => {
  const { members } = membership();
  members.update(['a:1', 'b:1'].map((id) => ({ id, draining: false })));
  const clock = t.capture(Date, 'now', () => 1_000_000).restore;
  members.markUnreachable('b:1');
  t.ok(HASHES.every((hash) => members.owner(hash) === 'a:1'));
  clock();
  t.capture(Date, 'now', () => 1_000_000 + 1001);
  t.ok(HASHES.some((hash) => members.owner(hash) === 'b:1'), 'b owns keys again after its first second');
});

t.test('this node draining or alone: it owns nothing new, or everything', async (t) => {
  const { members } = membership();
  t.ok(HASHES.every((hash) => members.owner(hash) === 'a:1'), 'no list yet: this node serves');
  members.update(['a:1', 'b:1'].map((id) => ({ id, draining: false })));
  members.drain();
  t.ok(HASHES.every((hash) => members.owner(hash) === 'b:1'));
  t.equal(members.view().find((m) => m.id === 'a:1')?.state, 'draining');
});

t.test('member ids: canonical host and port', async (t) => {
  t.equal(memberId('127.0.0.2', 8181), '127.0.0.2:8181');
  t.equal(memberId('2001:DB8:0:0::1', 1), '[2001:db8::1]:1');
  t.equal(memberId('::ffff:10.0.0.1', 1), '10.0.0.1:1');
  t.equal(memberId('Node-A.example', 2), 'node-a.example:2');
  t.same(parseMemberId('[2001:db8::1]:8181'), { id: '[2001:db8::1]:8181', host: '2001:db8::1', port: 8181 });
  t.same(parseMemberId('127.0.0.3:9'), { id: '127.0.0.3:9', host: '127.0.0.3', port: 9 });
  const seen: unknown[] = [];
  await new StaticMembers(['127.0.0.2:1', '[::1]:2']).start((list) => seen.push(list));
  t.same(seen, [[{ id: '127.0.0.2:1', draining: false }, { id: '[::1]:2', draining: false }]]);
});
