import t from 'tap';
import { LOG_PATH_MAX, realClientAddress, truncateForLog, type ClientFacts } from '../../../src/shared/inspect/client.js';

const facts = (over: Partial<ClientFacts>): ClientFacts => ({ proxySource: null, forwardedFor: [], forwarded: [], peer: '127.0.0.1', peerTrusted: true, ...over });

t.test('real client address: PROXY source, else trusted forwarded entry, else peer', async (t) => {
  const cases = [
    { name: 'PROXY source wins', input: facts({ proxySource: '198.51.100.22', forwardedFor: ['203.0.113.1'] }), hops: 1, expected: '198.51.100.22' },
    { name: 'PROXY source canonical', input: facts({ proxySource: '::ffff:198.51.100.22' }), hops: 1, expected: '198.51.100.22' },
    { name: 'X-Forwarded-For from a trusted peer', input: facts({ forwardedFor: ['1.1.1.1, 203.0.113.1'] }), hops: 1, expected: '203.0.113.1' },
    { name: 'hops from the right', input: facts({ forwardedFor: ['1.1.1.1, 203.0.113.1'] }), hops: 2, expected: '1.1.1.1' },
    { name: 'Forwarded for= when no X-Forwarded-For', input: facts({ forwarded: ['for=192.0.2.60;proto=http'] }), hops: 1, expected: '192.0.2.60' },
    { name: 'untrusted peer: its X-Forwarded-For is ignored', input: facts({ peer: '10.9.9.9', peerTrusted: false, forwardedFor: ['203.0.113.1'] }), hops: 1, expected: '10.9.9.9' },
    { name: 'garbage entry: the peer', input: facts({ forwardedFor: ['unknown'] }), hops: 1, expected: '127.0.0.1' },
    { name: 'mapped peer', input: facts({ peer: '::ffff:10.0.0.1', peerTrusted: false }), hops: 1, expected: '10.0.0.1' },
  ];
  for (const c of cases) t.equal(realClientAddress(c.input, c.hops), c.expected, c.name);
});

t.test('truncateForLog', async (t) => {
  t.equal(truncateForLog('/short'), '/short');
  const long = truncateForLog('/'.padEnd(5000, 'x'));
  t.equal(long.length, LOG_PATH_MAX + 1);
  t.ok(long.endsWith('…'));
});
