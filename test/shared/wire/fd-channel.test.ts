import { spawnSync } from 'node:child_process';
import { fstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import t from 'tap';
import { FdChannel, loadFdPass, type FdPassBinding } from '../../../src/shared/wire/fd-channel.js';

/**
 * The fd channel against the real addon (native/fdpass.c): descriptors that
 * arrive work, order holds when the socket is full, a closed peer is noticed.
 * On Linux the addon must be built (npm install builds it): a missing addon
 * fails here instead of silently leaving the IPC path in use.
 */

const maybeBinding = loadFdPass();
if (process.platform !== 'linux') {
  t.equal(maybeBinding, null, 'the addon is Linux-only; elsewhere the pool uses IPC');
  t.end();
} else {
  t.ok(maybeBinding, 'the fd-passing addon is built and loads');
}
const binding = maybeBinding as FdPassBinding;

interface TcpWrapBinding {
  readonly TCP: new (type: number) => { open(fd: number): number; close(): void };
  readonly constants: { readonly SOCKET: number };
}
const tcpWrap = (process as unknown as { binding(name: string): TcpWrapBinding }).binding('tcp_wrap');

/** A connected pair of TCP sockets on loopback: [client, server side]. */
async function tcpPair(t: Tap.Test): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const serverSide = await accepted;
  server.close();
  t.teardown(() => {
    client.destroy();
    serverSide.destroy();
  });
  return [client, serverSide];
}

/**
 * Waits for `promise` with the event loop held open: the channel's poller is
 * unref'd (it never keeps a process alive by itself), so without this the
 * test process could run out of work and exit mid-wait.
 */
async function held<T>(promise: Promise<T>): Promise<T> {
  const timer = setInterval(() => {}, 1000);
  try {
    return await promise;
  } finally {
    clearInterval(timer);
  }
}

function fdOf(socket: net.Socket): number {
  return (socket as unknown as { _handle: { fd: number } })._handle.fd;
}

function isOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

t.test('a descriptor sent on the channel arrives and works', async (t) => {
  const [a, b] = binding.socketpair();
  const received: Array<{ payload: Buffer; fds: Int32Array }> = [];
  let arrived!: () => void;
  const done = new Promise<void>((resolve) => (arrived = resolve));
  const receiver = new FdChannel(binding, b, (payload, fds) => {
    received.push({ payload, fds });
    arrived();
  }, () => t.fail('receiver broke'));
  const sender = new FdChannel(binding, a, () => t.fail('nothing comes back'), () => t.fail('sender broke'));
  t.teardown(() => {
    sender.close();
    receiver.close();
  });
  const [client, serverSide] = await tcpPair(t);
  let sent: Error | null | undefined;
  sender.post(Buffer.from('hello'), Int32Array.of(fdOf(serverSide)), 1, (error) => (sent = error));
  t.equal(sent, null, 'the kernel took it at once (done with null)');
  await held(done);
  t.equal(received.length, 1);
  t.equal(received[0]?.payload.toString(), 'hello', 'the payload arrives whole');
  t.equal(received[0]?.fds.length, 1, 'with its one descriptor');
  const fd = received[0]?.fds[0] as number;
  t.not(fd, fdOf(serverSide), 'a new descriptor in the receiver');
  // The received descriptor is the same connection: write to the client through it.
  const handle = new tcpWrap.TCP(tcpWrap.constants.SOCKET);
  t.equal(handle.open(fd), 0, 'it opens as a TCP handle');
  const socket = new net.Socket({ handle, readable: true, writable: true } as net.SocketConstructorOpts);
  const echoed = new Promise<string>((resolve) => client.once('data', (chunk) => resolve(chunk.toString())));
  socket.write('through the passed descriptor');
  t.equal(await echoed, 'through the passed descriptor');
  socket.destroy();
});

t.test('messages keep their order when the socket is full; nothing is lost', async (t) => {
  const [a, b] = binding.socketpair();
  const total = 200;
  const seen: number[] = [];
  let finished!: () => void;
  const done = new Promise<void>((resolve) => (finished = resolve));
  let delivered = 0;
  // 200 × 60 KB written in one synchronous loop cannot fit in the kernel's buffer.
  const sender = new FdChannel(binding, a, () => {}, () => t.fail('sender broke'));
  for (let index = 0; index < total; index++) {
    const payload = Buffer.alloc(60 * 1024, index & 0xff);
    payload.writeUInt32LE(index, 0);
    sender.post(payload, new Int32Array(0), 0, (error) => (error ? t.fail(`message ${index} failed`) : delivered++));
  }
  // Peek at the queue through the native send: one more message now must wait (EAGAIN).
  const eagainSeen = binding.send(a, Buffer.alloc(60 * 1024), new Int32Array(0), 0) === -11;
  t.ok(eagainSeen, 'the socket filled up (the queue was used)');
  t.ok(delivered < total, `${delivered} sent at once, the rest queued`);
  const receiver = new FdChannel(binding, b, (payload) => {
    if (payload.length === 60 * 1024 && payload.readUInt32LE(0) < total && payload[5] === (payload.readUInt32LE(0) & 0xff)) {
      seen.push(payload.readUInt32LE(0));
    }
    if (seen.length === total) finished();
  }, () => t.fail('receiver broke'));
  t.teardown(() => {
    sender.close();
    receiver.close();
  });
  await held(done);
  t.same(seen, Array.from({ length: total }, (_, index) => index), 'every message, in order');
  t.equal(delivered, total, 'each one reported sent once');
});

t.test('a closed peer breaks the channel; queued and later messages fail', async (t) => {
  const [a, b] = binding.socketpair();
  let brokenWith: Error | null = null;
  let broke!: () => void;
  const whenBroken = new Promise<void>((resolve) => (broke = resolve));
  const channel = new FdChannel(binding, a, () => {}, (error) => {
    brokenWith = error;
    broke();
  });
  t.equal(binding.close(b), 0);
  await held(whenBroken);
  t.match(String(brokenWith), /closed by peer/);
  t.notOk(channel.open);
  let failed: Error | null = null;
  channel.post(Buffer.from('x'), new Int32Array(0), 0, (error) => (failed = error));
  t.match(String(failed), /closed/, 'a post after the break fails at once');
  channel.close();
  t.notOk(isOpen(a), 'its descriptor is closed');
});

t.test('a failed send fails that message and the queue behind it', async (t) => {
  const [a, b] = binding.socketpair();
  let broken = 0;
  const channel = new FdChannel(binding, a, () => {}, () => broken++);
  binding.close(b);
  const failures: string[] = [];
  // Sending to a closed peer: EPIPE (before the poller saw the hang-up).
  channel.post(Buffer.from('one'), new Int32Array(0), 0, (error) => failures.push(`one: ${error?.message}`));
  channel.post(Buffer.from('two'), new Int32Array(0), 0, (error) => failures.push(`two: ${error?.message}`));
  t.equal(failures.length, 2, 'both failed');
  t.match(failures[0], /one: fd channel send failed \(errno 32\)/, 'EPIPE');
  t.match(failures[1], /two: fd channel closed/);
  t.equal(broken, 1, 'onBroken once');
  channel.close();
});

t.test('close fails what is queued behind a full socket', async (t) => {
  const [a, b] = binding.socketpair();
  const channel = new FdChannel(binding, a, () => {}, () => {});
  let failed = 0;
  for (let index = 0; index < 100; index++) channel.post(Buffer.alloc(60 * 1024), new Int32Array(0), 0, (error) => error && failed++);
  t.ok(failed === 0, 'nothing failed while the peer is there');
  channel.close();
  t.ok(failed > 0, `the ${failed} messages still queued failed on close`);
  channel.close();
  binding.close(b);
});

t.test('the addon: truncated messages close their descriptors; bad arguments are refused', async (t) => {
  const [a, b] = binding.socketpair();
  const [, serverSide] = await tcpPair(t);
  t.equal(binding.send(a, Buffer.alloc(100, 1), Int32Array.of(fdOf(serverSide)), 1), 100);
  const fdsOut = new Int32Array(binding.MAX_FDS + 1);
  const small = Buffer.alloc(16);
  const openBefore = readdirSync('/proc/self/fd').length;
  t.equal(binding.recv(b, small, fdsOut), -90, 'a message larger than the buffer: EMSGSIZE');
  t.equal(readdirSync('/proc/self/fd').length, openBefore, 'the descriptor that came with it was closed, not leaked');
  t.equal(fdsOut[0], 0, 'no descriptors handed out');
  t.equal(binding.recv(b, Buffer.alloc(1024), fdsOut), -11, 'and the message is gone (EAGAIN)');
  // Descriptors beyond MAX_FDS, or a payload of nothing, are refused before any syscall.
  t.equal(binding.send(a, Buffer.alloc(1), new Int32Array(binding.MAX_FDS + 1), binding.MAX_FDS + 1), -22);
  t.equal(binding.send(a, Buffer.alloc(0), new Int32Array(0), 0), -22);
  t.equal(binding.send(a, Buffer.alloc(1), new Int32Array(1), 2), -22, 'count beyond the array');
  t.equal(binding.send(-1, Buffer.alloc(1), new Int32Array(0), 0), -9, 'EBADF');
  t.equal(binding.recv(b, Buffer.alloc(16), new Int32Array(2)), -22, 'fdsOut too short');
  t.equal(binding.setNonBlocking(-1), -9);
  t.equal(binding.close(-1), -9);
  t.throws(() => new binding.Poller(-1, () => {}), 'a Poller needs a descriptor');
  const poller = new binding.Poller(a, () => {});
  t.equal(poller.close(), 0);
  t.equal(poller.start(binding.READABLE), -9, 'a closed poller does nothing');
  t.equal(poller.stop(), -9);
  t.equal(poller.unref(), -9);
  binding.close(a);
  binding.close(b);
});

t.test('at the descriptor limit the message still arrives, with the descriptors that fit (a prefix)', async (t) => {
  // A child under `ulimit -n 60` sends itself MAX_FDS descriptors in one message.
  const addon = join(__dirname, '..', '..', '..', 'build', 'Release', 'fdpass.node');
  const script = join(__dirname, '..', '..', 'fixtures', 'fd-limit.js');
  const run = spawnSync('bash', ['-c', `ulimit -n 60 && exec "${process.execPath}" "${script}" "${addon}"`], {
    encoding: 'utf8',
    timeout: 30_000,
    // Without tap's instrumentation (it writes files at exit, which this limit would refuse).
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  t.equal(run.status, 0, 'the child ran to the end');
  const result = JSON.parse(run.stdout) as { sent: number; received: number; count: number; max: number };
  t.equal(result.sent, 5, 'sent whole');
  t.equal(result.received, 5, 'the payload arrived (not an error)');
  t.ok(result.count > 0 && result.count < result.max, `${result.count} of ${result.max} descriptors installed: the rest did not fit`);
});
