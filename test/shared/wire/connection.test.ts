import fc from 'fast-check';
import t from 'tap';
import type { ConnectionInfo } from '../../../src/shared/connection-info.js';
import { bytesFromWire, bytesToWire, infoFromWire, infoToWire } from '../../../src/shared/wire/connection.js';

t.test('bytes survive the JSON channel exactly, whatever they are', async (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 4096 }), fc.nat(16), (bytes, cut) => {
      // A view into a larger buffer, as the master's peek often is.
      const backing = Buffer.concat([Buffer.alloc(cut, 0xaa), Buffer.from(bytes), Buffer.alloc(3, 0xbb)]);
      const view = backing.subarray(cut, cut + bytes.length);
      const wire = JSON.parse(JSON.stringify({ bytes: bytesToWire(view) })) as { bytes: unknown };
      return bytesFromWire(wire.bytes).equals(Buffer.from(bytes));
    }),
  );
  const head = Buffer.from('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
  t.equal(bytesToWire(head).length, head.length, 'no size overhead for ASCII');
  t.same(bytesFromWire(undefined), Buffer.alloc(0), 'not a string: no bytes');
  t.same(bytesFromWire({ type: 'Buffer', data: [1] }), Buffer.alloc(0));
});

t.test('ConnectionInfo: TLV bytes round-trip; without byte TLVs it goes as is', async (t) => {
  const plain: ConnectionInfo = { key: '198.51.100.22', keySource: 'proxy', worker: 1, proxy: null };
  t.equal(infoToWire(plain), plain, 'no copy without bytes');
  t.equal(infoFromWire(infoToWire(plain)), plain);
  const withTlvs: ConnectionInfo = {
    key: 'k',
    keySource: 'proxy',
    worker: 0,
    proxy: {
      source: { address: '198.51.100.22', port: 35646 },
      destination: { address: '203.0.113.7', port: 80 },
      tlvs: { authority: 'example.com', awsVpceId: 'vpce-1', uniqueId: Buffer.from([0, 1, 2, 255]), other: [{ type: 0xe0, value: Buffer.from('\x00\xff\x80', 'latin1') }] },
    },
  };
  const wire = JSON.parse(JSON.stringify(infoToWire(withTlvs))) as ReturnType<typeof infoToWire>;
  t.type(wire.proxy?.tlvs.uniqueId, 'string', 'bytes travel as a string');
  const back = infoFromWire(wire);
  t.ok(Buffer.isBuffer(back.proxy?.tlvs.uniqueId), 'and come back as a Buffer');
  t.same(back, withTlvs, 'the same info on the other side');
  const onlyOther: ConnectionInfo = { ...withTlvs, proxy: { ...withTlvs.proxy!, tlvs: { other: [{ type: 1, value: Buffer.from('x') }] } } };
  t.same(infoFromWire(JSON.parse(JSON.stringify(infoToWire(onlyOther)))), onlyOther);
  const onlyId: ConnectionInfo = { ...withTlvs, proxy: { ...withTlvs.proxy!, tlvs: { uniqueId: Buffer.from('abc') } } };
  t.same(infoFromWire(JSON.parse(JSON.stringify(infoToWire(onlyId)))), onlyId);
});
