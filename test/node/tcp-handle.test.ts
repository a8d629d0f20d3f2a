import net from 'node:net';
import t, { type Test } from 'tap';
import { takeOverAccept } from '../../src/node/accept.js';
import { DESCRIPTORS_OPEN, RAW_READS, loadStreamWrap, loadTcpWrap, openDescriptor, rawDescriptor, rawPeer, readRaw, socketFromHandle, stopRawReads, closeRaw, type RawTcpHandle } from '../../src/node/tcp-handle.js';
import { descriptorOf } from '../../src/node/socket.js';
import { FdChannel, loadFdPass, type FdPassBinding } from '../../src/shared/wire/fd-channel.js';
import { canary } from './canary.js';

/** A server whose accepted connections arrive as raw handles. */
async function rawListener(t: Test): Promise<{ port: number; next: () => Promise<RawTcpHandle> }> {
  const handles: RawTcpHandle[] = [];
  const server = net.createServer({ pauseOnConnect: true });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  canary(t, 'net.Server _handle.onconnection', takeOverAccept(server, (handle) => handles.push(handle), () => {}), 'a listening server has an onconnection callback to take over');
  return {
    port: (server.address() as net.AddressInfo).port,
    next: async () => {
      for (let i = 0; i < 500 && handles.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      return handles.shift() as RawTcpHandle;
    },
  };
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
  });
}

t.test("process.binding('stream_wrap') read state", async (t) => {
  const wrap = loadStreamWrap();
  canary(t, "process.binding('stream_wrap')", wrap !== null, 'has streamBaseState (Int32Array), kReadBytesOrError and kArrayBufferOffset');
  canary(t, 'raw reads', RAW_READS, 'in use (unless STICKY_NODE_PUBLIC names raw-accept)');
});

t.test("process.binding('tcp_wrap') TCP and constants.SOCKET", async (t) => {
  const wrap = loadTcpWrap();
  canary(t, "process.binding('tcp_wrap')", wrap !== null, 'has TCP and constants.SOCKET');
  canary(t, 'tcp_wrap TCP.prototype.open', DESCRIPTORS_OPEN, 'opens descriptors');
});

t.test('tcp_wrap onread/readStart/readStop: chunks arrive, a stop leaves the rest in the kernel, new net.Socket({ handle }) reads it', async (t) => {
  const server = await rawListener(t);
  const client = await connect(server.port);
  t.teardown(() => client.destroy());
  const handle = await server.next();
  canary(t, 'tcp_wrap getpeername', rawPeer(handle).replace(/^::ffff:/, '') === '127.0.0.1', `the peer is 127.0.0.1 (got ${rawPeer(handle)})`);
  canary(t, 'tcp_wrap fd', rawDescriptor(handle) > 2, `a descriptor number (got ${rawDescriptor(handle)})`);
  const first = new Promise<string>((resolve) => {
    const started = readRaw(
      handle,
      (chunk) => {
        stopRawReads(handle, true);
        resolve(chunk.toString());
      },
      () => resolve('<end>'),
    );
    canary(t, 'tcp_wrap readStart', started, 'returns 0');
  });
  client.write('first');
  canary(t, 'stream_wrap streamBaseState', (await first) === 'first', 'onread sees the byte count and offset of the chunk');
  client.write('second');
  const socket = socketFromHandle(handle);
  t.teardown(() => socket.destroy());
  const rest = await new Promise<string>((resolve) => socket.once('data', (chunk: Buffer) => resolve(chunk.toString())));
  canary(t, 'tcp_wrap readStop + new net.Socket({ handle })', rest === 'second', `the bytes after the stop reach the socket (got ${JSON.stringify(rest)})`);
  canary(t, 'net.Socket _handle.fd', descriptorOf(socket) === rawDescriptor(handle), 'the socket reports the handle\'s descriptor');
});

t.test("tcp_wrap: the client's close reaches onread as EOF", async (t) => {
  const server = await rawListener(t);
  const client = await connect(server.port);
  const handle = await server.next();
  const ended = new Promise<boolean>((resolve) => readRaw(handle, () => {}, () => resolve(true)));
  client.end();
  canary(t, 'stream_wrap kReadBytesOrError (EOF)', await ended, 'a negative count reports the close');
  closeRaw(handle);
});

t.test('native/fdpass.c (uv_poll_t) and tcp_wrap TCP.open(fd): a descriptor passed on a socket pair opens as a handle that writes', { skip: loadFdPass() === null ? 'the addon is not built here' : false }, async (t) => {
  const binding = loadFdPass() as FdPassBinding;
  const [a, b] = binding.socketpair();
  const arrived = new Promise<Int32Array>((resolve) => {
    const receiver = new FdChannel(binding, b, (_payload, fds) => resolve(fds), () => {});
    t.teardown(() => receiver.close());
  });
  const sender = new FdChannel(binding, a, () => {}, () => {});
  t.teardown(() => sender.close());
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = await connect((server.address() as net.AddressInfo).port);
  t.teardown(() => client.destroy());
  const original = await accepted;
  t.teardown(() => original.destroy());
  sender.post(Buffer.from('x'), Int32Array.of(descriptorOf(original)), 1, () => {});
  // The poller keeps no ref on the loop; a timer holds the test open while it waits.
  const timer = setInterval(() => {}, 1000);
  const fds = await arrived;
  clearInterval(timer);
  canary(t, 'native/fdpass.c uv_poll_t', fds.length === 1, "the receiver's poller fired with the descriptor");
  const handle = openDescriptor(fds[0] as number);
  canary(t, 'tcp_wrap new TCP(SOCKET).open(fd)', handle !== null, 'returns 0');
  if (handle === null) return;
  const socket = socketFromHandle(handle);
  t.teardown(() => socket.destroy());
  const echoed = new Promise<string>((resolve) => client.once('data', (chunk: Buffer) => resolve(chunk.toString())));
  socket.write('through the passed descriptor');
  canary(t, 'new net.Socket({ handle }) over an opened descriptor', (await echoed) === 'through the passed descriptor', 'writes reach the client');
});
