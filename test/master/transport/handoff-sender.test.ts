import { readdirSync } from 'node:fs';
import net from 'node:net';
import t from 'tap';
import type { ConnectionInfo } from '../../../src/shared/connection-info.js';
import { loadFdPass, type FdPassBinding } from '../../../src/shared/wire/fd-channel.js';
import { decodeAcks, decodeBatch, encodeAcks, encodeBatch, type BatchEntry } from '../../../src/shared/wire/fd-batch.js';
import { HandoffSender } from '../../../src/master/transport/handoff-sender.js';
import { HandoffReceiver } from '../../../src/worker/receive.js';
import { connections, fdOf, tcpWrap, until } from '../../helpers/fd-pass.js';

const info = (key: string, worker = 0): ConnectionInfo => ({ key, keySource: 'forwarded', worker, proxy: null, peer: '127.0.0.1', peerTrusted: true });

const maybeBinding = loadFdPass();
if (maybeBinding === null) {
  t.equal(process.platform === 'linux', false, 'on Linux the addon must be built');
  t.end();
}
const binding = maybeBinding as FdPassBinding;

t.test('sender → receiver: 150 connections in batches, every one acknowledged, each descriptor the right client', async (t) => {
  const [masterEnd, workerEnd] = binding.socketpair();
  const acked: number[] = [];
  const failed: number[] = [];
  const sender = new HandoffSender(binding, masterEnd, (id) => acked.push(id));
  const got: Array<{ entry: BatchEntry; socket: net.Socket }> = [];
  const receiver = new HandoffReceiver(
    binding,
    workerEnd,
    (fd) => {
      const handle = new tcpWrap.TCP(tcpWrap.constants.SOCKET);
      return handle.open(fd) === 0 ? handle : null;
    },
    (entry, handle) => got.push({ entry, socket: new net.Socket({ handle, readable: true, writable: true } as net.SocketConstructorOpts) }),
    (error) => t.fail(error.message),
  );
  t.teardown(() => {
    sender.close();
    receiver.close();
    for (const { socket } of got) socket.destroy();
  });
  const count = 150;
  const { clients, accepted } = await connections(t, count);
  for (let index = 0; index < count; index++) {
    const id = index + 1;
    const queued = sender.enqueue(id, fdOf(accepted[index] as net.Socket), Buffer.from(`request ${id}`), info(`key-${id}`), (error) => {
      if (error) failed.push(id);
    });
    t.equal(queued, true);
  }
  await until(() => acked.length === count && got.length === count, 'every ack');
  t.same([...acked].sort((a, b) => a - b), Array.from({ length: count }, (_, index) => index + 1), 'each id acknowledged once');
  t.same(failed, []);
  // Each passed descriptor is its client's connection: answer through it, the right client hears its id.
  const answers = clients.map((client) => new Promise<string>((resolve) => client.once('data', (chunk) => resolve(chunk.toString()))));
  for (const { entry, socket } of got) {
    t.equal(entry.bytes.toString(), `request ${entry.id}`, 'bytes with their connection');
    t.equal(entry.info.key, `key-${entry.id}`);
    socket.write(`answer ${entry.id}`);
  }
  const heard = await Promise.all(answers);
  t.same(heard, clients.map((_, index) => `answer ${index + 1}`), 'every client got the answer for its own id');
});

t.test('descriptors the worker cannot open are refused back; the rest acknowledged', async (t) => {
  const [masterEnd, workerEnd] = binding.socketpair();
  const acked: number[] = [];
  const refused: Array<[number, string]> = [];
  const sender = new HandoffSender(binding, masterEnd, (id) => acked.push(id));
  const receiver = new HandoffReceiver(
    binding,
    workerEnd,
    // Every third descriptor "fails to open" (as a full descriptor table would).
    (fd) => {
      opened++;
      if (opened % 3 === 0) {
        binding.close(fd);
        return null;
      }
      const handle = new tcpWrap.TCP(tcpWrap.constants.SOCKET);
      handle.open(fd);
      handles.push(handle);
      return handle;
    },
    () => {},
    (error) => t.fail(error.message),
  );
  let opened = 0;
  const handles: Array<{ close(): void }> = [];
  t.teardown(() => {
    sender.close();
    receiver.close();
    for (const handle of handles) handle.close();
  });
  const { accepted } = await connections(t, 9);
  accepted.forEach((socket, index) => {
    sender.enqueue(index + 1, fdOf(socket), Buffer.alloc(0), info('k'), (error) => {
      if (error) refused.push([index + 1, error.message]);
    });
  });
  await until(() => acked.length + refused.length === 9, 'every answer');
  t.same(refused.map(([id]) => id), [3, 6, 9], 'the ones it could not open come back');
  t.match(refused[0]?.[1], /could not take the descriptor/);
  t.same(acked, [1, 2, 4, 5, 7, 8]);
});

t.test('a batch whose descriptors went missing: entries without one are refused', async (t) => {
  const [masterEnd, workerEnd] = binding.socketpair();
  const answers: number[] = [];
  const receiver = new HandoffReceiver(binding, workerEnd, () => null, () => t.fail('nothing to open'), (error) => t.fail(error.message));
  // The master's end read by hand: the receiver must answer even for a batch that came without descriptors.
  t.teardown(() => receiver.close());
  const payload = encodeBatch([{ id: 41, bytes: Buffer.from('x'), info: info('k') }, { id: 42, bytes: Buffer.alloc(0), info: info('k') }]);
  t.equal(binding.send(masterEnd, payload, new Int32Array(0), 0), payload.length);
  const buffer = Buffer.alloc(1024);
  const fds = new Int32Array(binding.MAX_FDS + 1);
  await until(() => {
    const n = binding.recv(masterEnd, buffer, fds);
    if (n > 0) answers.push(...decodeAcks(buffer.subarray(0, n)));
    return answers.length === 2;
  }, 'the refusals');
  t.same(answers, [-41, -42]);
  binding.close(masterEnd);
});

t.test('a garbled batch: its descriptors are closed and the error reported', async (t) => {
  const [masterEnd, workerEnd] = binding.socketpair();
  const errors: string[] = [];
  const receiver = new HandoffReceiver(binding, workerEnd, () => t.fail('nothing opened') as never, () => {}, (error) => errors.push(error.message));
  t.teardown(() => receiver.close());
  const { accepted } = await connections(t, 1);
  const garbage = Buffer.from('\x01\x05\x00\x00\x00notjs');
  const openBefore = readdirSync('/proc/self/fd').length;
  t.equal(binding.send(masterEnd, garbage, Int32Array.of(fdOf(accepted[0] as net.Socket)), 1), garbage.length);
  await until(() => errors.length === 1, 'the error');
  t.match(errors[0], /JSON/);
  t.equal(readdirSync('/proc/self/fd').length, openBefore, 'the descriptor that came with it was closed');
  binding.close(masterEnd);
});

t.test('the sender: what cannot go this way is refused up front; queued entries fail on close', async (t) => {
  const [masterEnd, workerEnd] = binding.socketpair();
  const sender = new HandoffSender(binding, masterEnd, () => {});
  const ok = (): void => {};
  t.notOk(sender.enqueue(1, -1, Buffer.alloc(1), info('k'), ok), 'no descriptor');
  t.notOk(sender.enqueue(2, 0, Buffer.alloc(40 * 1024), info('k'), ok), 'bytes too large for one message: IPC');
  const failures: number[] = [];
  t.ok(sender.enqueue(3, 0, Buffer.alloc(10), info('k'), (error) => error && failures.push(3)));
  t.ok(sender.open);
  sender.close();
  t.same(failures, [3], 'the queued one failed');
  t.notOk(sender.open);
  t.notOk(sender.enqueue(4, 0, Buffer.alloc(1), info('k'), ok), 'closed: nothing more');
  binding.close(workerEnd);
});

t.test('the sender flushes at once when a batch is full (MAX_FDS or bytes)', async (t) => {
  const [masterEnd, workerEnd] = binding.socketpair();
  const sender = new HandoffSender(binding, masterEnd, () => {});
  t.teardown(() => {
    sender.close();
    binding.close(workerEnd);
  });
  const { accepted } = await connections(t, 1);
  const fd = fdOf(accepted[0] as net.Socket);
  // The same descriptor many times is fine for this check: what is counted is messages.
  for (let id = 1; id <= binding.MAX_FDS; id++) sender.enqueue(id, fd, Buffer.alloc(1), info('k'), () => {});
  const buffer = Buffer.alloc(256 * 1024);
  const fds = new Int32Array(binding.MAX_FDS + 1);
  const n = binding.recv(workerEnd, buffer, fds);
  t.ok(n > 0, 'a full batch went out synchronously, without waiting for the event loop');
  t.equal(fds[0], binding.MAX_FDS, 'with MAX_FDS descriptors');
  t.equal(decodeBatch(buffer.subarray(0, n)).length, binding.MAX_FDS);
  for (let index = 1; index <= (fds[0] as number); index++) binding.close(fds[index] as number);
  sender.enqueue(100, fd, Buffer.alloc(20 * 1024), info('k'), () => {});
  t.equal(binding.recv(workerEnd, buffer, fds), -11, 'one 20 KB entry waits for more');
  sender.enqueue(101, fd, Buffer.alloc(20 * 1024), info('k'), () => {});
  const m = binding.recv(workerEnd, buffer, fds);
  t.same(decodeBatch(buffer.subarray(0, m)).map((entry) => entry.id), [100, 101], 'two 20 KB entries fill a batch');
  for (let index = 1; index <= (fds[0] as number); index++) binding.close(fds[index] as number);
});

t.test('a hand-back: the worker sends the descriptor and the key of the next request; the master gets a working handle', async (t) => {
  const [masterEnd, workerEnd] = binding.socketpair();
  const handedBack: Array<{ entry: BatchEntry; handle: object }> = [];
  const sender = new HandoffSender(binding, masterEnd, () => {}, (entry, handle) => handedBack.push({ entry, handle }));
  const receiver = new HandoffReceiver(binding, workerEnd, () => null, () => {}, (error) => t.fail(error.message));
  t.teardown(() => {
    sender.close();
    receiver.close();
  });
  const { clients, accepted } = await connections(t, 1);
  const workerSocket = accepted[0] as net.Socket;
  let sent: Error | null | undefined;
  const ok = receiver.handBack(fdOf(workerSocket), Buffer.from('GET /next HTTP/1.1\r\n\r\n'), info('first'), { key: '198.51.100.7', keySource: 'forwarded' }, (error) => (sent = error));
  t.ok(ok, 'it went on the channel');
  t.equal(sent, null, 'in flight at once: the worker may close its copy');
  // The worker closes its copy, as the runtime does once the descriptor is in flight.
  workerSocket.destroy();
  await until(() => handedBack.length === 1, 'the hand-back');
  const { entry, handle } = handedBack[0] as { entry: BatchEntry; handle: object };
  t.same(entry.handback, { key: '198.51.100.7', keySource: 'forwarded' });
  t.equal(entry.bytes.toString(), 'GET /next HTTP/1.1\r\n\r\n', 'the unserved bytes come along');
  const socket = new net.Socket({ handle, readable: true, writable: true } as net.SocketConstructorOpts);
  const heard = new Promise<string>((resolve) => (clients[0] as net.Socket).once('data', (chunk) => resolve(chunk.toString())));
  socket.write('from the master');
  t.equal(await heard, 'from the master', 'the connection survived the worker closing its copy');
  socket.destroy();
  t.notOk(receiver.handBack(-1, Buffer.alloc(0), info('k'), { key: 'k', keySource: 'remote' }, () => {}), 'no descriptor: IPC');
  t.notOk(receiver.handBack(0, Buffer.alloc(40 * 1024), info('k'), { key: 'k', keySource: 'remote' }, () => {}), 'too large: IPC');
});

t.test('the master ignores what it should not get: connections, garbage; each descriptor closed', async (t) => {
  const [masterEnd, workerEnd] = binding.socketpair();
  const errors: string[] = [];
  const handedBack: unknown[] = [];
  const sender = new HandoffSender(binding, masterEnd, () => t.fail('no ack'), (entry) => handedBack.push(entry), (error) => errors.push(error.message));
  t.teardown(() => sender.close());
  const { accepted } = await connections(t, 1);
  const fd = fdOf(accepted[0] as net.Socket);
  const openBefore = readdirSync('/proc/self/fd').length;
  // A batch of connections (master → worker only), garbage, and acks with a descriptor attached.
  const batch = encodeBatch([{ id: 1, bytes: Buffer.alloc(0), info: info('k') }]);
  t.equal(binding.send(workerEnd, batch, Int32Array.of(fd), 1), batch.length);
  t.equal(binding.send(workerEnd, Buffer.from([7, 7]), Int32Array.of(fd), 1), 2);
  const acks = encodeAcks([12345]);
  t.equal(binding.send(workerEnd, acks, Int32Array.of(fd), 1), acks.length);
  await until(() => errors.length === 1, 'the garbage reported');
  await until(() => readdirSync('/proc/self/fd').length === openBefore, 'every received descriptor closed');
  t.match(errors[0], /unknown message kind 7/);
  t.same(handedBack, [], 'nothing routed');
  binding.close(workerEnd);
});
