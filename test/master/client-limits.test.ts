import t from 'tap';
import { ClientLimits } from '../../src/master/client-limits.js';
import { resolvedConfig } from '../helpers/worker.js';

function limits(perClient: Record<string, unknown>): ClientLimits {
  return new ClientLimits(resolvedConfig({ limits: { perClient } }).limits.perClient as NonNullable<ReturnType<typeof resolvedConfig>['limits']['perClient']>);
}

t.test('open connections: counted per client from admission, released by the worker that holds them, or when it goes', async (t) => {
  const table = limits({ maxConnections: 2 });
  t.equal(table.countsOpen, true);
  const [w1, w2] = [{}, {}];
  t.equal(table.admit('198.51.100.7', 0), null);
  t.equal(table.admit('198.51.100.7', 0), null);
  t.equal(table.admit('198.51.100.7', 0), 'ERR_CLIENT_CONNECTIONS', 'the third is refused');
  table.heldBy(w1, '198.51.100.7');
  table.heldBy(w2, '198.51.100.7');
  table.closedBy(w2, ['198.51.100.7', '198.51.100.7', '203.0.113.1']);
  t.equal(table.openOf('198.51.100.7'), 1, "a worker releases only what it was counted for, once per connection");
  table.workerGone(w1);
  t.equal(table.openOf('198.51.100.7'), 0, 'a worker gone releases everything it held');
  t.equal(table.admit('198.51.100.7', 0), null);
  table.release('198.51.100.7');
  t.equal(table.openOf('198.51.100.7'), 0, 'released before any worker took it');
  table.reacquire('198.51.100.7', 0);
  t.equal(table.openOf('198.51.100.7'), 1, 'a handed-back connection counts again');
});

t.test('rate: a burst, then refused until the bucket refills; Retry-After says when; exempt ranges are never asked', async (t) => {
  const table = limits({ connectionsPerSecond: 2, connectionBurst: 2, exempt: ['10.0.0.0/8'] });
  t.equal(table.countsOpen, false, 'no maxConnections: nothing counted as open');
  t.equal(table.admit('198.51.100.7', 0), null);
  t.equal(table.admit('198.51.100.7', 0), null);
  t.equal(table.admit('198.51.100.7', 0), 'ERR_CLIENT_RATE');
  t.ok(table.retryAfterSeconds('198.51.100.7', 0) >= 1);
  t.equal(table.admit('198.51.100.7', 600), null, 'a token back after half a second');
  t.equal(table.isExempt('10.1.2.3'), true);
  t.equal(table.isExempt('198.51.100.7'), false);
  t.equal(limits({ connectionsPerSecond: 1 }).isExempt('10.1.2.3'), false, 'no exempt list');
  t.ok(table.size >= 1);
});
