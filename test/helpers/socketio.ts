import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';

/** A socket.io client that has connected (or not), with every error it saw so far and later. */
export interface SocketIoClient {
  readonly socket: Socket;
  readonly connected: boolean;
  /** connect_error and unexpected disconnect reasons, as they come. */
  readonly errors: string[];
}

/** Connects one socket.io client (no reconnection, a fresh manager) and records its errors. */
export async function connectSocketIo(url: string, options: Partial<ManagerOptions & SocketOptions>): Promise<SocketIoClient> {
  const socket: Socket = io(url, { reconnection: false, forceNew: true, timeout: 20_000, ...options });
  const errors: string[] = [];
  socket.on('connect_error', (error) => errors.push(`connect_error: ${error.message}`));
  socket.on('disconnect', (reason) => {
    if (reason !== 'io client disconnect') errors.push(`disconnect: ${reason}`);
  });
  const connected = await new Promise<boolean>((resolve) => {
    socket.once('connect', () => resolve(true));
    socket.once('connect_error', () => resolve(false));
  });
  return { socket, connected, errors };
}
