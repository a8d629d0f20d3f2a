import net from 'node:net';

interface TcpWrapBinding {
  readonly TCP: new (type: number) => { open(fd: number): number; close(): void };
  readonly constants: { readonly SOCKET: number };
}
/** Node's TCP handle class, to open a received descriptor as the worker does. */
export const tcpWrap = (process as unknown as { binding(name: string): TcpWrapBinding }).binding('tcp_wrap');

/** `count` accepted loopback connections: the client ends and the accepted ends. */
export async function connections(t: Tap.Test, count: number): Promise<{ clients: net.Socket[]; accepted: net.Socket[] }> {
  const accepted: net.Socket[] = [];
  const server = net.createServer({ pauseOnConnect: true }, (socket) => accepted.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const clients = await Promise.all(
    Array.from({ length: count }, () => new Promise<net.Socket>((resolve) => {
      const client = net.connect(port, '127.0.0.1', () => resolve(client));
    })),
  );
  while (accepted.length < count) await new Promise((resolve) => setImmediate(resolve));
  server.close();
  t.teardown(() => {
    for (const socket of [...clients, ...accepted]) socket.destroy();
  });
  return { clients, accepted };
}

export const fdOf = (socket: net.Socket): number => (socket as unknown as { _handle: { fd: number } })._handle.fd;

/** Resolves when `check` holds, looking once per turn of the event loop (bounded). */
export async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

