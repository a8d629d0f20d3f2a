import { fstatSync } from 'node:fs';
import type net from 'node:net';
import pino from 'pino';
import t from 'tap';
import type { ConnectionInfo } from '../../src/shared/connection-info.js';
import { loadFdPass, MAX_MESSAGE_BYTES, type FdPassBinding } from '../../src/shared/wire/fd-channel.js';
import { decodeAcks, decodeMessage, encodeBatch, KIND_HANDBACK, type BatchEntry } from '../../src/shared/wire/fd-batch.js';
import { openFdChannel } from '../../src/worker/receive.js';
import { connections, fdOf, until } from '../helpers/fd-pass.js';

const INFO: ConnectionInfo = { key: '198.51.100.7', keySource: 'forwarded', worker: 0, proxy: null, peer: '127.0.0.1', peerTrusted: true };
const log = pino({ level: 'silent' });

const maybeBinding = loadFdPass();
if (maybeBinding === null) {
  t.equal(process.platform === 'linux', false, 'on Linux the addon must be built');
  t.end();
}
const binding = maybeBinding as FdPassBinding;

/** Reads one message from the master's end of the channel (bounded wait). */
async function readOne(fd: number): Promise<{ payload: Buffer; fds: number[] }> {
  const buffer = Buffer.alloc(MAX_MESSAGE_BYTES);
  const fds = new Int32Array(binding.MAX_FDS + 1);
  let got: { payload: Buffer; fds: number[] } | null = null;
  await until(() => {
    const n = binding.recv(fd, buffer, fds);
    // fds[0] is how many descriptors came, then the descriptors.
    if (n > 0) got = { payload: Buffer.from(buffer.subarray(0, n)), fds: [...fds.subarray(1, 1 + (fds[0] as number))] };
    return got !== null;
  }, 'a message from the worker');
  return got as unknown as { payload: Buffer; fds: number[] };
}

t.test('no channel, or not a descriptor: null, and the master keeps using IPC', async (t) => {
  t.equal(openFdChannel(null, () => t.fail('no connection'), log), null);
  t.equal(openFdChannel(-1, () => t.fail('no connection'), log), null);
  t.equal(openFdChannel(1.5, () => t.fail('no connection'), log), null);
});

t.test('a batch from the master: acknowledged at once, then each connection given with its bytes and info', async (t) => {
  const [masterEnd, workerEnd] = binding.socketpair();
  const got: Array<{ entry: BatchEntry; handle: object }> = [];
  const receiver = openFdChannel(workerEnd, (entry, handle) => got.push({ entry, handle }), log);
  t.ok(receiver, 'this worker reads the channel');
  t.teardown(() => {
    receiver?.close();
    binding.close(masterEnd);
    for (const { handle } of got) (handle as { close(): void }).close();
  });
  const { accepted } = await connections(t, 2);
  const payload = encodeBatch([
    { id: 7, bytes: Buffer.from('GET / HTTP/1.1\r\n\r\n'), info: INFO },
    { id: 8, bytes: Buffer.alloc(0), info: { ...INFO, key: 'other' } },
  ]);
  t.equal(binding.send(masterEnd, payload, Int32Array.from(accepted.map(fdOf)), 2), payload.length);
  const acks = await readOne(masterEnd);
  t.same(decodeAcks(acks.payload), [7, 8], 'one message acknowledges both');
  await until(() => got.length === 2, 'both connections');
  t.same(got.map(({ entry }) => [entry.id, entry.bytes.toString(), entry.info.key]), [
    [7, 'GET / HTTP/1.1\r\n\r\n', INFO.key],
    [8, '', 'other'],
  ]);
});

t.test('a hand-back goes to the master as one message with its descriptor; what cannot go this way is refused', async (t) => {
  const [masterEnd, workerEnd] = binding.socketpair();
  const receiver = openFdChannel(workerEnd, () => t.fail('no connection'), log);
  if (receiver === null) throw new Error('the channel did not open');
  t.teardown(() => binding.close(masterEnd));
  const { accepted } = await connections(t, 1);
  const socket = accepted[0] as net.Socket;
  const sent: Array<Error | null> = [];
  const bytes = Buffer.from('POST /next HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi');
  t.equal(receiver.handBack(fdOf(socket), bytes, INFO, { key: 'next-client', keySource: 'forwarded' }, (error) => sent.push(error)), true);
  const message = await readOne(masterEnd);
  await until(() => sent.length === 1, 'the send callback');
  t.same(sent, [null], 'in flight: the worker may close its copy');
  const decoded = decodeMessage(message.payload);
  t.equal(decoded.kind, KIND_HANDBACK);
  const entry = (decoded as { entries: BatchEntry[] }).entries[0] as BatchEntry;
  t.same([entry.bytes.toString(), entry.info.key, entry.handback], [bytes.toString(), INFO.key, { key: 'next-client', keySource: 'forwarded' }]);
  t.equal(message.fds.length, 1, 'the descriptor came with it');
  t.equal(fstatSync(message.fds[0] as number).ino, fstatSync(fdOf(socket)).ino, 'and it is the same connection');
  binding.close(message.fds[0] as number);

  t.equal(receiver.handBack(-1, bytes, INFO, { key: 'k', keySource: 'forwarded' }, () => t.fail('not sent')), false, 'no descriptor');
  t.equal(receiver.handBack(fdOf(socket), Buffer.alloc(MAX_MESSAGE_BYTES), INFO, { key: 'k', keySource: 'forwarded' }, () => t.fail('not sent')), false, 'too large for one message: IPC');
  receiver.close();
  t.equal(receiver.handBack(fdOf(socket), bytes, INFO, { key: 'k', keySource: 'forwarded' }, () => t.fail('not sent')), false, 'closed: IPC');
});
