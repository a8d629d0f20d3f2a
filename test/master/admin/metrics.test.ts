import t from 'tap';
import { MasterMetrics } from '../../../src/master/admin/metrics.js';
import { parseExposition, sumOf } from '../../helpers/prometheus.js';

t.test('the master registry renders valid Prometheus text with every family the issue names', async (t) => {
  const metrics = new MasterMetrics();
  metrics.handoffs.inc({ worker: '0', key_source: 'forwarded' });
  metrics.handoffs.inc({ worker: '1', key_source: 'cookie' }, 2);
  metrics.handoffSeconds.observe(0.002);
  metrics.refused.inc({ reason: 'ERR_PEEK_TIMEOUT' });
  metrics.active.set({ worker: '0' }, 4);
  metrics.respawns.inc({ worker: '1' });
  metrics.fallbacks.inc({ reason: 'slot-not-ready' });
  const exposition = parseExposition(await metrics.render());
  const expected: Record<string, string> = {
    sticky_handoffs_total: 'counter',
    sticky_handoff_seconds: 'histogram',
    sticky_refused_connections_total: 'counter',
    sticky_active_connections: 'gauge',
    sticky_worker_respawns_total: 'counter',
    sticky_fallbacks_total: 'counter',
  };
  for (const [name, type] of Object.entries(expected)) t.equal(exposition.types.get(name), type, name);
  t.equal(sumOf(exposition, 'sticky_handoffs_total', { key_source: 'cookie' }), 2);
  t.equal(sumOf(exposition, 'sticky_handoff_seconds_count'), 1);
  t.equal(sumOf(exposition, 'sticky_handoff_seconds_bucket', { le: '+Inf' }), 1);
  t.equal(sumOf(exposition, 'sticky_active_connections', { worker: '0' }), 4);
});

t.test('the test parser rejects invalid expositions', async (t) => {
  const table = [
    { name: 'sample without TYPE', text: 'foo 1\n' },
    { name: 'two TYPEs', text: '# TYPE foo counter\n# TYPE foo counter\nfoo 1\n' },
    { name: 'bad value', text: '# TYPE foo counter\nfoo one\n' },
    { name: 'unquoted label', text: '# TYPE foo counter\nfoo{a=b} 1\n' },
    { name: 'bad type', text: '# TYPE foo countr\nfoo 1\n' },
    { name: 'duplicate sample', text: '# TYPE foo gauge\nfoo{a="1"} 1\nfoo{a="1"} 2\n' },
    { name: 'TYPE after samples', text: '# TYPE foo_bucket gauge\n# TYPE foo histogram\nfoo_bucket{le="1"} 1\n# TYPE foo_bucket gauge\n' },
  ];
  for (const row of table) t.throws(() => parseExposition(row.text), row.name);
  t.doesNotThrow(() => parseExposition('# HELP foo a\n# TYPE foo counter\nfoo{a="x\\"y",b="2"} 3 1700000000\n'));
});
