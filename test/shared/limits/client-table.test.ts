import fc from 'fast-check';
import t from 'tap';
import { ClientTable, defaultBurst } from '../../../src/shared/limits/client-table.js';

t.test('open connections: the limit is per client, and a release makes room again', async (t) => {
  const table = new ClientTable({ maxOpen: 2, maxEntries: 100 });
  t.equal(table.admit('a', 0), null);
  t.equal(table.admit('a', 0), null);
  t.equal(table.admit('a', 0), 'ERR_CLIENT_CONNECTIONS', 'the third open one is refused');
  t.equal(table.admit('b', 0), null, 'another client is not affected');
  table.release('a');
  t.equal(table.openOf('a'), 1);
  t.equal(table.admit('a', 0), null, 'room again after a release');
  table.release('nobody');
  t.equal(table.openOf('nobody'), 0, 'releasing an unknown client does nothing');
  table.acquire('b', 0);
  t.equal(table.openOf('b'), 2, 'acquire counts without checking');
});

t.test('rate: a burst at once, then the refill rate; Retry-After says when', async (t) => {
  const table = new ClientTable({ ratePerSecond: 2, burst: 3, maxEntries: 100 });
  for (let i = 0; i < 3; i++) t.equal(table.admit('a', 1000), null, `burst ${i + 1}`);
  t.equal(table.admit('a', 1000), 'ERR_CLIENT_RATE', 'over the burst');
  t.equal(table.retryAfterSeconds('a', 1000), 1, 'one token in half a second: Retry-After 1');
  t.equal(table.admit('a', 1400), 'ERR_CLIENT_RATE', '0.8 tokens after 400 ms');
  t.equal(table.admit('a', 1500), null, 'one token after 500 ms');
  t.equal(table.admit('a', 100_000), null, 'a long quiet spell refills to the burst');
  t.equal(table.admit('a', 100_000), null);
  t.equal(table.admit('a', 100_000), null);
  t.equal(table.admit('a', 100_000), 'ERR_CLIENT_RATE', 'but never beyond it');
  t.equal(new ClientTable({ ratePerSecond: 0.1, maxEntries: 4 }).retryAfterSeconds('x', 0), 1, 'an unknown client may retry at once');
  t.equal(defaultBurst(0.5), 1, 'the default burst is at least 1');
  t.equal(defaultBurst(20), 20, "and one second's worth");
});

t.test('a refused connection is not counted as open', async (t) => {
  const table = new ClientTable({ maxOpen: 5, ratePerSecond: 1, burst: 1, maxEntries: 10 });
  t.equal(table.admit('a', 0), null);
  t.equal(table.admit('a', 0), 'ERR_CLIENT_RATE');
  t.equal(table.openOf('a'), 1, 'only the admitted one');
});

t.test('the table never holds more than maxEntries and forgets the clients not seen for longest first', async (t) => {
  // maxEntries 4: generations of 2.
  const table = new ClientTable({ maxOpen: 1, maxEntries: 4 });
  table.admit('a', 0);
  table.admit('b', 0);
  table.admit('c', 1); // a new generation: a and b are the previous one
  table.admit('a', 2); // a is seen again: it moves up
  table.admit('d', 3); // a new generation: b, not seen since, is forgotten
  t.ok(table.size <= 4, `size ${table.size}`);
  t.equal(table.evictions, 1);
  t.equal(table.openOf('b'), 0, 'b was forgotten');
  t.equal(table.openOf('a'), 1, 'a, seen recently, was kept');
  t.equal(table.openOf('c'), 1, 'c too');
  t.equal(table.admit('b', 4), null, 'a forgotten client starts afresh (the fairness cost of the bound)');
  t.equal(table.admit('a', 4), 'ERR_CLIENT_CONNECTIONS', 'a kept client keeps its count');
});

t.test('property: any sequence keeps the size bound and never lets open exceed maxOpen', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.constantFrom('admit', 'release'), fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 50 })), { maxLength: 300 }), (steps) => {
      const table = new ClientTable({ maxOpen: 3, ratePerSecond: 5, burst: 4, maxEntries: 8 });
      let now = 0;
      for (const [op, client, dt] of steps) {
        now += dt;
        if (op === 'admit') table.admit(`c${client}`, now);
        else table.release(`c${client}`);
        if (table.size > 8) return false;
        if (table.openOf(`c${client}`) > 3) return false;
      }
      return true;
    }),
  );
  t.pass('bounded');
});
