/**
 * Which of Node's internals the balancer uses on this runtime, and what it
 * does instead where one is missing. Each group below has a public path that
 * keeps every byte; it costs speed, never correctness. A group is off when its
 * shape check fails at start, or when STICKY_NODE_PUBLIC names it (a comma
 * list, or "all"): that is how the tests run the byte-exactness checks through
 * every public path on every Node line.
 */

/** The groups of internals with a public path, and what taking it costs. */
export const PUBLIC_PATHS = {
  'raw-accept': {
    uses: "server._handle.onconnection, the stream_wrap binding's read state, tcp_wrap onread/readStart/readStop",
    instead: 'net.Server sockets with pauseOnConnect for the peek',
    cost: 'a net.Socket and its stream machinery per connection in the master',
  },
  'fd-open': {
    uses: 'the tcp_wrap binding (new TCP(SOCKET).open(fd)) for descriptors received on the fd channel',
    instead: "Node's IPC channel for hand-offs",
    cost: 'one IPC message, sendmsg(2) and acknowledgement per connection instead of batches',
  },
  'response-relay': {
    uses: 'ServerResponse _header, _headerSent, _writeRaw, _last, _sent100 and socket._httpMessage',
    instead: 'key.reuse "forward" hands connections back through the master (as "handback")',
    cost: 'a request for another worker moves its connection instead of being relayed',
  },
  'stop-reading': {
    uses: "a socket's _read, _handle.readStop, handle.reading and _readableState.ended",
    instead: 'key.reuse "handback" closes such a connection after its response (as "close")',
    cost: "every response on a connection that may carry other clients (a trusted proxy's) says Connection: close, so the proxy reconnects per request",
  },
} as const;

/** A group of internals with a public path. */
export type PublicPath = keyof typeof PUBLIC_PATHS;

function parseForced(value: string | undefined): ReadonlySet<string> {
  const names = (value ?? '').split(',').map((name) => name.trim()).filter((name) => name !== '');
  return new Set(names.includes('all') ? Object.keys(PUBLIC_PATHS) : names);
}

const forced = parseForced(process.env.STICKY_NODE_PUBLIC);
const missing = new Set<PublicPath>();

/**
 * True when the group's internals may be used: not forced off, and `shapeHolds`
 * (its shape check) holds. A group found missing is remembered for
 * {@link publicPathsTaken}.
 */
export function internalsUsable(group: PublicPath, shapeHolds: () => boolean): boolean {
  if (forced.has(group)) return false;
  let ok: boolean;
  try {
    ok = shapeHolds();
  } catch {
    ok = false;
  }
  if (!ok) missing.add(group);
  return ok;
}

/** The groups on their public path in this process, forced or missing, for one warn line each at start. */
export function publicPathsTaken(): Array<{ readonly internal: PublicPath; readonly forced: boolean; readonly instead: string; readonly cost: string }> {
  const taken = new Set<PublicPath>([...missing, ...(forced as ReadonlySet<PublicPath>)]);
  return [...taken]
    .filter((group) => group in PUBLIC_PATHS)
    .map((group) => ({ internal: group, forced: forced.has(group), instead: PUBLIC_PATHS[group].instead, cost: PUBLIC_PATHS[group].cost }));
}
