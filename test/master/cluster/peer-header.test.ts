import t from 'tap';
import { PEER_TLV_TYPE, peerHeader, readPeerHeader, type ForwardedFacts } from '../../../src/master/cluster/peer-header.js';
import { parseProxyHeader } from '../../../src/shared/protocol/proxy.js';

const TCP = { source: { address: '10.0.0.7', port: 40000 }, destination: { address: '10.0.0.1', port: 8080 } };

/** What the owner makes of the header the entry node writes. */
function roundTrip(facts: ForwardedFacts, tcp = TCP) {
  const header = peerHeader(facts, tcp);
  if (header === null) throw new Error('no header');
  const parsed = parseProxyHeader(Buffer.concat([header, Buffer.from('GET / HTTP/1.1\r\n\r\n')]));
  if (parsed.kind !== 'done') throw new Error(`not parsed: ${parsed.kind}`);
  t.equal(parsed.consumed, header.length, 'application bytes start right after the header');
  const { value } = parsed;
  return { header: value, read: readPeerHeader({ source: value.source, destination: value.destination, tlvs: value.tlvs }) };
}

t.test('a connection that came with a PROXY header: its endpoints and TLVs go on, the key with them', async (t) => {
  const facts: ForwardedFacts = {
    key: '198.51.100.22',
    keySource: 'proxy',
    peer: '10.0.0.7',
    peerTrusted: true,
    proxy: { source: { address: '198.51.100.22', port: 35646 }, destination: { address: '203.0.113.1', port: 443 }, tlvs: { authority: 'example.com', awsVpceId: 'vpce-0123', other: [{ type: 0xe1, value: Buffer.from([1, 2, 3]) }] } },
    via: '127.0.0.2:8181',
  };
  const { header, read } = roundTrip(facts);
  t.same(header.source, { address: '198.51.100.22', port: 35646 });
  t.same(header.destination, { address: '203.0.113.1', port: 443 });
  t.ok(read);
  t.equal(read?.key, '198.51.100.22');
  t.equal(read?.keySource, 'proxy');
  t.equal(read?.peer, '10.0.0.7');
  t.equal(read?.peerTrusted, true);
  t.equal(read?.via, '127.0.0.2:8181');
  t.equal(read?.addresses, undefined, 'the PROXY header is the app’s view');
  t.same(read?.proxy?.source, { address: '198.51.100.22', port: 35646 });
  t.equal(read?.proxy?.tlvs.authority, 'example.com');
  t.equal(read?.proxy?.tlvs.awsVpceId, 'vpce-0123');
  t.same(read?.proxy?.tlvs.other, [{ type: 0xe1, value: Buffer.from([1, 2, 3]) }], 'the received custom TLV is kept, ours is not shown');
});

t.test('a connection without a PROXY header: the TCP endpoints, and the owner shows no PROXY header', async (t) => {
  const facts: ForwardedFacts = { key: 'abc=; "odd" \u00e9\u4e2d', keySource: 'cookie', peer: '10.0.0.7', peerTrusted: false, proxy: null, via: '[::1]:8181' };
  const { header, read } = roundTrip(facts);
  t.same(header.source, TCP.source);
  t.equal(read?.proxy, null);
  t.same(read?.addresses, { source: TCP.source, destination: TCP.destination });
  t.equal(read?.key, facts.key, 'any key text survives');
  t.equal(read?.keySource, 'cookie');
  t.equal(read?.peerTrusted, false);
});

t.test('IPv6 and IPv4-mapped endpoints', async (t) => {
  const v6 = roundTrip({ key: 'k', keySource: 'remote', peer: '2001:db8::1', peerTrusted: false, proxy: null, via: 'a:1' }, { source: { address: '2001:db8::1', port: 1 }, destination: { address: '2001:db8::2', port: 2 } });
  t.equal(v6.header.family, 'TCP6');
  t.same(v6.read?.addresses?.source, { address: '2001:db8::1', port: 1 });
  const mapped = roundTrip({ key: 'k', keySource: 'remote', peer: '192.0.2.1', peerTrusted: false, proxy: null, via: 'a:1' }, { source: { address: '::ffff:192.0.2.1', port: 1 }, destination: { address: '::ffff:192.0.2.2', port: 2 } });
  t.equal(mapped.header.family, 'TCP4', 'mapped addresses go as IPv4');
});

t.test('no endpoints to write: no header (the caller serves the connection where it is)', async (t) => {
  t.equal(peerHeader({ key: 'k', keySource: 'remote', peer: '', peerTrusted: false, proxy: null, via: 'a:1' }, null), null);
  const unix = { source: { address: '/run/a.sock', port: 0 }, destination: { address: '/run/b.sock', port: 0 }, tlvs: {} };
  t.equal(peerHeader({ key: 'k', keySource: 'proxy', peer: '', peerTrusted: true, proxy: unix, via: 'a:1' }, null), null);
});

t.test('the owner ignores a header without our TLV or with a malformed one', async (t) => {
  const ends = { source: { address: '192.0.2.1', port: 1 }, destination: { address: '192.0.2.2', port: 2 } };
  t.equal(readPeerHeader({ ...ends, tlvs: {} }), null);
  for (const value of ['not json', '{}', '{"k":1,"s":"proxy","p":"","t":true,"x":true,"v":"a"}', '{"k":"a","s":"nope","p":"","t":true,"x":true,"v":"a"}']) {
    t.equal(readPeerHeader({ ...ends, tlvs: { other: [{ type: PEER_TLV_TYPE, value: Buffer.from(value) }] } }), null, value);
  }
});
