import { CLI_OPTIONS } from '../../shared/config/load.js';
import { configSchema } from '../../shared/config/schema.js';

/** One line per flag of CLI_OPTIONS (the type makes a new flag without a line a compile error). */
const FLAGS: { readonly [K in keyof typeof CLI_OPTIONS]: readonly [argument: string, help: string] } = {
  config: ['FILE', 'the config file (default ./config.json; built-in defaults when it is absent)'],
  port: ['N', 'the public port (listen.port)'],
  workers: ['N|auto', 'worker processes (workers.count; auto = one per CPU)'],
  'admin-port': ['N', 'the admin API port (admin.port; turns the admin API on)'],
  pretty: ['', 'human-readable log lines instead of JSON (log.pretty)'],
  check: ['', 'check the config, the TLS files and that workers.app loads; bind nothing; exit 0 or 2'],
  help: ['', 'print this help and exit'],
  version: ['', 'print the version and exit'],
};

/** One line per config section (the type makes a new section without a line a compile error). */
const SECTIONS: { readonly [K in keyof typeof configSchema.shape]: string } = {
  $schema: 'path of config.schema.json, for editors (ignored)',
  listen: 'host, port: where clients connect',
  workers: 'count, app, drainTimeoutMs, handoff, heartbeatMs, unresponsiveMs, ackTimeoutMs, killUnresponsiveMs: the worker processes',
  key: 'order, cookie, forwardedTrustedHops, reuse: where the client key comes from',
  proxyProtocol: 'mode (off|optional|required), trustedFrom: PROXY protocol v1/v2',
  limits: 'peekBytes, peekTimeoutMs, maxConnections, headersTimeoutMs, requestTimeoutMs, perClient',
  admin: 'host, port, token (or false): the admin API',
  log: 'level, pretty',
  health: 'path, graceMs: a health check answered on the traffic port',
  balanceFactor: 'bounded-load consistent hashing (1.25 = 125 % of the mean)',
  stickyCookie: 'name, secret, maxAgeS: a signed cookie that pins a client to its worker',
  inspect: 'methods, hosts, paths, maxUrlBytes: requests refused at the edge',
  accessLog: 'one line per request with the real client address',
  tls: 'cert, key, ca, passphrase, http2: TLS terminated in the workers',
  cluster: 'self, peer, members (list, dns or redis): many nodes, one owner per key',
};

/** The text of `--help`. */
export function usage(version: string): string {
  const flagLines = Object.entries(FLAGS).map(([name, [argument, help]]) => {
    const short = (CLI_OPTIONS[name as keyof typeof CLI_OPTIONS] as { short?: string }).short;
    const spelled = `${short ? `-${short}, ` : '    '}--${name}${argument ? ` ${argument}` : ''}`;
    return `  ${spelled.padEnd(26)}${help}`;
  });
  const sectionLines = Object.entries(SECTIONS).map(([name, help]) => `  ${name.padEnd(16)}${help}`);
  return [
    `sticky-session-ts ${version}: a sticky load balancer for node:cluster workers`,
    '',
    'Usage: sticky-session-ts [options]      (or: node dist/master.js [options])',
    '',
    'Options (they override the config file):',
    ...flagLines,
    '',
    'Config file sections (JSON; every key optional; unknown keys are an error; schema: config.schema.json):',
    ...sectionLines,
    '',
    'Signals to the master:',
    '  SIGHUP          re-read the config file and replace the workers one at a time',
    '  SIGTTIN/SIGTTOU one worker more / one fewer',
    '  SIGUSR2         start a new master on the same listening sockets; this one drains and exits once it is ready',
    '  SIGTERM/SIGINT  stop accepting (after health.graceMs on SIGTERM), drain the workers, exit 0',
    '',
    'Exit codes: 0 done, 1 the app could not start or a port could not be bound, 2 bad config or flags.',
    '',
  ].join('\n');
}
