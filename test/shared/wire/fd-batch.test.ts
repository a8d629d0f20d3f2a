import fc from 'fast-check';
import t from 'tap';
import type { ConnectionInfo } from '../../../src/shared/connection-info.js';
import { decodeAcks, decodeBatch, decodeMessage, encodeAcks, encodeBatch, KIND_ACKS, KIND_CONNECTIONS, KIND_HANDBACK, type BatchEntry } from '../../../src/shared/wire/fd-batch.js';
const info = (key: string, worker = 0): ConnectionInfo => ({ key, keySource: 'forwarded', worker, proxy: null, peer: '127.0.0.1', peerTrusted: true });

t.test('a batch round-trips: ids, bytes exactly, infos with TLV bytes', async (t) => {
  const arbitraryInfo = fc.record({
    key: fc.string({ maxLength: 40 }),
    uniqueId: fc.option(fc.uint8Array({ maxLength: 64 }), { nil: undefined }),
  });
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.uint8Array({ maxLength: 2048 }), arbitraryInfo), { maxLength: 70 }), (items) => {
      const entries: BatchEntry[] = items.map(([id, bytes, meta]) => ({
        id,
        bytes: Buffer.from(bytes),
        info: {
          key: meta.key,
          keySource: 'proxy',
          worker: 1,
          proxy: {
            source: { address: '198.51.100.22', port: 35646 },
            destination: { address: '203.0.113.7', port: 443 },
            tlvs: meta.uniqueId === undefined ? {} : { uniqueId: Buffer.from(meta.uniqueId) },
          },
        },
      }));
      const decoded = decodeBatch(encodeBatch(entries));
      t.same(decoded, entries);
      return decoded.every((entry, index) => entry.bytes.equals((entries[index] as BatchEntry).bytes));
    }),
    { numRuns: 200 },
  );
});

t.test('a malformed batch is refused, never half-read', async (t) => {
  const good = encodeBatch([{ id: 7, bytes: Buffer.from('GET / HTTP/1.1\r\n\r\n'), info: info('k') }]);
  t.throws(() => decodeBatch(Buffer.alloc(4)), /too short/);
  const overrun = Buffer.from(good);
  overrun.writeUInt32LE(good.length, 1);
  t.throws(() => decodeBatch(overrun), /overruns the message/);
  const json = (text: string, tail = Buffer.alloc(0)): Buffer => {
    const head = Buffer.alloc(5);
    head[0] = KIND_CONNECTIONS;
    head.writeUInt32LE(Buffer.byteLength(text), 1);
    return Buffer.concat([head, Buffer.from(text), tail]);
  };
  t.throws(() => decodeBatch(json('{"a":1}')), /not a list/);
  t.throws(() => decodeBatch(json('[[1,"x",{}]]')), /malformed batch entry/);
  t.throws(() => decodeBatch(json('[[1,-1,{}]]')), /malformed batch entry/);
  t.throws(() => decodeBatch(json('[[1,2,null]]')), /malformed batch entry/);
  t.throws(() => decodeBatch(json('[[1,5,{}]]', Buffer.from('abc'))), /overruns the message/);
  t.throws(() => decodeBatch(json('[[1,0,{},"not a key"]]')), /malformed hand-back key/);
  t.throws(() => decodeBatch(json('[[1,0,{},{"key":3}]]')), /malformed hand-back key/);
  t.throws(() => decodeBatch(Buffer.concat([good, Buffer.from('x')])), /trailing bytes/);
  t.throws(() => decodeMessage(Buffer.from([9, 0, 0, 0, 0])), /unknown message kind 9/);
  t.throws(() => decodeMessage(Buffer.alloc(0)), /unknown message kind undefined/);
  t.same(decodeBatch(good).map((entry) => entry.id), [7]);
  t.same(decodeMessage(good), { kind: KIND_CONNECTIONS, entries: decodeBatch(good) }, 'a batch of connections');
  const handback = encodeBatch([{ id: 0, bytes: Buffer.from('GET /next'), info: info('k'), handback: { key: '198.51.100.7', keySource: 'forwarded', stickySlot: 1 } }], KIND_HANDBACK);
  t.same(decodeMessage(handback), {
    kind: KIND_HANDBACK,
    entries: [{ id: 0, bytes: Buffer.from('GET /next'), info: info('k'), handback: { key: '198.51.100.7', keySource: 'forwarded', stickySlot: 1 } }],
  }, 'a hand-back carries the key of the next request');
});

t.test('acks round-trip, refusals as negative ids', async (t) => {
  fc.assert(fc.property(fc.array(fc.integer({ min: -(2 ** 31) + 1, max: 2 ** 31 - 1 })), (ids) => JSON.stringify(decodeAcks(encodeAcks(ids))) === JSON.stringify(ids)));
  t.same(decodeAcks(Buffer.from([KIND_ACKS, 1, 0, 0, 0, 9])), [1], 'a trailing partial id is ignored');
  t.same(decodeMessage(encodeAcks([5, -6])), { kind: KIND_ACKS, ids: [5, -6] });
});
