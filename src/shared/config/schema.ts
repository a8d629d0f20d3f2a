import { z } from 'zod';
import { KEY_SOURCES } from '../key/sources.js';

/**
 * The config.json schema. Validated once at start; unknown
 * keys are an error everywhere (strict objects) so a typo never silently turns
 * a protection off. Optional sections absent = feature off at zero cost.
 */

const PORT_MSG = 'expected a port number (0-65535)';
const port = z.number({ error: PORT_MSG }).int({ error: PORT_MSG }).min(0, { error: PORT_MSG }).max(65535, { error: PORT_MSG });
const POSITIVE_MSG = 'expected a positive integer';
const positiveInt = z.number({ error: POSITIVE_MSG }).int({ error: POSITIVE_MSG }).positive({ error: POSITIVE_MSG });


const listen = z.strictObject({
  host: z.string().min(1).default('0.0.0.0'),
  port: port.default(8080),
});

const workers = z.strictObject({
  count: z.union([positiveInt.max(1024), z.literal('auto')], { error: 'expected a positive integer or "auto"' }).default(2),
  app: z.string().min(1).default('./dist/workers/demo-app.js'),
  /** How long a stopping worker may keep serving its connections. */
  drainTimeoutMs: positiveInt.default(10_000),
  /**
   * How connections reach the workers: "auto" passes descriptors in batches
   * over a socket pair per worker (native/fdpass.c) where the addon is built,
   * else Node's IPC channel; "ipc" always uses Node's IPC channel.
   */
  handoff: z.enum(['auto', 'ipc']).default('auto'),
  /** How often a worker tells the master it is alive (any message counts). */
  heartbeatMs: positiveInt.default(1000),
  /** A worker the master has heard nothing from for this long is unresponsive: its keys go to their next slot. */
  unresponsiveMs: positiveInt.default(3000),
  /** A hand-off delivered this long ago and still not acknowledged makes its worker unresponsive too. */
  ackTimeoutMs: positiveInt.default(2000),
  /** An unresponsive worker is killed (and respawned into its slot) after this long; 0: never. */
  killUnresponsiveMs: z.number().int().min(0).default(60_000),
}).refine((workers) => workers.heartbeatMs < workers.unresponsiveMs, { path: ['heartbeatMs'], message: 'expected less than workers.unresponsiveMs (a healthy worker must be heard from in time)' });

const key = z.strictObject({
  order: z
    .array(z.enum(KEY_SOURCES))
    .min(1)
    .refine((order) => new Set(order).size === order.length, 'expected each key source at most once')
    .default(['proxy', 'forwarded', 'remote']),
  cookie: z.string().min(1).regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'expected a cookie name (RFC 6265 token)').default('sid'),
  forwardedTrustedHops: positiveInt.max(64).default(1),
  reuse: z.enum(['handback', 'forward', 'close', 'off']).optional(),
});

const proxyProtocol = z.strictObject({
  mode: z.enum(['off', 'optional', 'required']).default('optional'),
  trustedFrom: z.array(z.string().min(1)).default(['127.0.0.0/8', '::1/128']),
});

/** Per-client limits at the edge, counted on the real client address (PROXY source, trusted X-Forwarded-For entry, or peer). */
const perClient = z.strictObject({
  /** Open connections per client address at most (counted in the master, released when the worker closes them). */
  maxConnections: positiveInt.optional(),
  /** New connections per second per client address (token bucket), with `connectionBurst` at once. */
  connectionsPerSecond: z.number().positive().max(1_000_000).optional(),
  connectionBurst: positiveInt.optional(),
  /** HTTP requests per second per client address, checked by the worker serving them, with `requestBurst` at once. */
  requestsPerSecond: z.number().positive().max(1_000_000).optional(),
  requestBurst: positiveInt.optional(),
  /** A refused connection whose first request head was read gets an HTTP 429 with Retry-After instead of a bare close. */
  respond429: z.boolean().default(false),
  /** Client addresses never limited (health checkers, your office): CIDRs. */
  exempt: z.array(z.string()).default([]),
  /** Most client addresses tracked per process; the least recently seen is forgotten first. */
  tableSize: z.number().int().min(16).max(10_000_000).default(100_000),
});

const limits = z.strictObject({
  /** Most bytes the master reads before it must decide (the head of the first request). */
  peekBytes: z.number().int().min(256).max(1 << 20).default(16384),
  /** A client that has not sent a complete head by then is closed. */
  peekTimeoutMs: positiveInt.default(5000),
  /** Master-level cap on open client connections; beyond it new ones are closed at once. */
  maxConnections: positiveInt.optional(),
  /** Worker side: http.Server headersTimeout / requestTimeout for handed-off connections. */
  headersTimeoutMs: positiveInt.default(60_000),
  requestTimeoutMs: z.number().int().min(0).default(300_000),
  perClient: perClient.optional(),
});

const admin = z.union([
  z.literal(false),
  z.strictObject({
    host: z.string().min(1).default('127.0.0.1'),
    port: port.default(9090),
    /** When set, every admin request needs `Authorization: Bearer <token>`. Required off loopback. */
    token: z.string().min(16, 'expected a token of at least 16 characters').optional(),
  }).superRefine((admin, ctx) => {
    // Anyone who can reach the admin API can scale the workers and read every metric.
    if (admin.token === undefined && !isLoopbackHost(admin.host)) {
      ctx.addIssue({ code: 'custom', path: ['token'], message: `expected a token: admin.host ${JSON.stringify(admin.host)} is not a loopback address` });
    }
  }),
]);

const log = z.strictObject({
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Human-readable lines (pino-pretty) instead of JSON. */
  pretty: z.boolean().default(false),
});

/** A health check answered by the master itself on the traffic port (HAProxy's monitor-uri). */
const health = z.strictObject({
  /** `GET`/`HEAD` of exactly this path, as the first request of a connection: 200 while a worker is ready, 503 while stopping. */
  path: z.string().regex(/^\/[\x21-\x7e]*$/, 'expected an absolute path such as "/healthz"'),
  /** On SIGTERM, how long the master goes on serving (answering 503 here) before it stops accepting, so a load balancer sees it leave first. */
  graceMs: z.number().int().min(0).max(600_000).default(0),
});

const stickyCookie = z.strictObject({
  name: z.string().min(1).regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'expected a cookie name (RFC 6265 token)'),
  secret: z.string().min(16, 'expected a secret of at least 16 characters'),
  maxAgeS: positiveInt.optional(),
});

/** A path pattern: compiled at start, so a bad one is a config error naming its path. */
const pathPattern = z.string().superRefine((pattern, ctx) => {
  try {
    new RegExp(pattern);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: `invalid regular expression (${(error as Error).message})`, input: pattern });
  }
});

const inspect = z.strictObject({
  methods: z.array(z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'expected an HTTP method token')).min(1).optional(),
  /** `example.com` or `*.example.com` (case-insensitive; the request's port is ignored). */
  hosts: z
    .array(z.string().regex(/^(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$|^\[[0-9A-Fa-f:.]+\]$/, 'expected a host name, "*.domain" or "[IPv6]"'))
    .min(1)
    .optional(),
  paths: z
    .strictObject({
      allow: z.array(pathPattern).optional(),
      deny: z.array(pathPattern).optional(),
    })
    .optional(),
  maxUrlBytes: positiveInt.optional(),
});

const tls = z.strictObject({
  cert: z.string().min(1),
  key: z.string().min(1),
  ca: z.string().min(1).optional(),
  passphrase: z.string().optional(),
  http2: z.boolean().default(false),
});

/** A member id: `host:port` (`[v6]:port`), the address a peer's peer port is reached at. */
const MEMBER_MSG = 'expected "host:port" (an IPv6 host in brackets: "[::1]:8181")';
const memberId = z.string().regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$/, MEMBER_MSG);

/** Where the member list comes from: a static list, DNS records or Redis heartbeats. */
const members = z.union(
  [
    z.array(memberId).min(1),
    z.strictObject({
      /** A/AAAA records of this name are the members (a Kubernetes headless service, Consul DNS, AWS Cloud Map). */
      dns: z.string().min(1),
      /** The peer port every member listens on (records carry addresses only). */
      port,
      /** How often the records are read again. */
      intervalMs: positiveInt.default(5000),
      /** Name servers to ask ("127.0.0.1:5353"); the system's when absent. */
      servers: z.array(z.string().min(1)).min(1).optional(),
    }),
    z.strictObject({
      /** A Redis URL; each node keeps a heartbeat key there with a TTL and reads the others'. */
      redis: z.string().regex(/^rediss?:\/\//, 'expected a redis:// or rediss:// URL'),
      /** A node whose heartbeat is older than this has left. */
      ttlMs: z.number().int().min(500).default(5000),
      /** How often the member list is read (a leaver is gone from every view within ttlMs + intervalMs). */
      intervalMs: positiveInt.default(1000),
      /** The heartbeat keys' prefix (several clusters can share one Redis). */
      prefix: z.string().min(1).default('sticky-session:node:'),
    }),
  ],
  { error: 'expected a list of "host:port" members, { "dns": NAME, "port": N } or { "redis": URL }' },
);

/** Many nodes: placement over member nodes first, then over the owner's worker slots. */
const cluster = z.strictObject({
  /** This node's id: the address peers reach its peer port at. */
  self: memberId,
  /** The peer port: where other nodes forward the connections this node owns. */
  peer: z.strictObject({
    host: z.string().min(1),
    port,
    /** Only these may connect to the peer port (their PROXY header and key are trusted). */
    trustedFrom: z.array(z.string().min(1)).min(1),
    /** A peer that has not accepted a forwarded connection by then is skipped (its keys go to their next node). */
    connectTimeoutMs: positiveInt.default(1000),
  }),
  members,
}).refine((cluster) => !Array.isArray(cluster.members) || cluster.members.includes(cluster.self), {
  path: ['members'],
  message: 'expected the list to include cluster.self (every node hashes over the same list, itself included)',
});

/** The whole config.json. */
export const configSchema = z.strictObject({
  /** Where an editor finds the JSON Schema of this file (config.schema.json); ignored here. */
  $schema: z.string().optional(),
  listen: listen.default({ host: '0.0.0.0', port: 8080 }),
  workers: workers.default({ count: 2, app: './dist/workers/demo-app.js', drainTimeoutMs: 10_000, handoff: 'auto', heartbeatMs: 1000, unresponsiveMs: 3000, ackTimeoutMs: 2000, killUnresponsiveMs: 60_000 }),
  key: key.default({ order: ['proxy', 'forwarded', 'remote'], cookie: 'sid', forwardedTrustedHops: 1 }),
  proxyProtocol: proxyProtocol.default({ mode: 'optional', trustedFrom: ['127.0.0.0/8', '::1/128'] }),
  limits: limits.default({ peekBytes: 16384, peekTimeoutMs: 5000, headersTimeoutMs: 60_000, requestTimeoutMs: 300_000 }),
  admin: admin.default({ host: '127.0.0.1', port: 9090 }),
  log: log.default({ level: 'info', pretty: false }),
  health: health.optional(),
  /** Bounded-load consistent hashing (HAProxy hash-balance-factor, as a ratio: 1.25 = 125%). */
  balanceFactor: z.number().min(1).max(100).optional(),
  stickyCookie: stickyCookie.optional(),
  inspect: inspect.optional(),
  accessLog: z.boolean().optional(),
  tls: tls.optional(),
  cluster: cluster.optional(),
});

/** 127.0.0.0/8, ::1 and "localhost": an admin API there is reachable from this machine only. */
function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** config.json as written (before defaults). */
export type ConfigInput = z.input<typeof configSchema>;
/** config.json after validation and defaults. */
export type Config = z.output<typeof configSchema>;

/** The JSON Schema of config.json as written (for editors), generated from {@link configSchema}. */
export function configJsonSchema(): Record<string, unknown> {
  return { ...z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }), title: 'sticky-session-ts config.json' };
}
