import WebSocket from 'ws';

/** Opens a WebSocket to the demo app's echo (`/ws`) with `client` as its X-Forwarded-For. */
export function openWebSocket(port: number, client: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { 'x-forwarded-for': client }, handshakeTimeout: 30_000 });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** The n-th of up to 16M distinct client addresses (10.x.y.z). */
export function clientAddress(n: number): string {
  return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

/** Opens `count` WebSockets, `atOnce` handshakes at a time, each from its own client address. */
export async function openWebSockets(port: number, count: number, atOnce = 200): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  for (let start = 0; start < count; start += atOnce) {
    const batch = await Promise.all(Array.from({ length: Math.min(atOnce, count - start) }, (_, i) => openWebSocket(port, clientAddress(start + i))));
    sockets.push(...batch);
  }
  return sockets;
}

/** Sends `text` and resolves with the echo. */
export function echo(ws: WebSocket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    ws.once('message', (data) => resolve(String(data)));
    ws.once('error', reject);
    ws.send(text);
  });
}

/** Closes every socket and resolves once each has closed. */
export async function closeAll(sockets: readonly WebSocket[]): Promise<void> {
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === WebSocket.CLOSED) return resolve();
          ws.once('close', () => resolve());
          ws.terminate();
        }),
    ),
  );
}
