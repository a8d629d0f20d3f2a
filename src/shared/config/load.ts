import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CidrList } from '../ip/address.js';
import { formatIssue } from './issues.js';
import { configJsonSchema, configSchema, type Config } from './schema.js';
import { loadTlsMaterial } from './tls-material.js';

/** A validated config with every relative path resolved and every derived value computed once. */
export interface ResolvedConfig extends Config {
  /** Absolute path of the config file it came from (null: built-in defaults only). */
  readonly configPath: string | null;
  /** `workers.app` resolved relative to the config file. */
  readonly appPath: string;
  /** `workers.count` with "auto" turned into one per CPU. */
  readonly workerCount: number;
}

/**
 * The result of loading: a frozen config, or every problem found, one line
 * each (`message` is the lines joined), each line naming the file when there is one.
 */
export type LoadResult = { readonly ok: true; readonly config: ResolvedConfig } | { readonly ok: false; readonly message: string; readonly errors: readonly string[] };

function failure(errors: readonly string[]): { ok: false; message: string; errors: readonly string[] } {
  return { ok: false, message: errors.join('\n'), errors };
}

/** Command-line flags: they override the file. */
export interface CliFlags {
  readonly config?: string;
  readonly port?: number;
  readonly workers?: number | 'auto';
  readonly adminPort?: number;
  readonly pretty?: boolean;
}

/** What the command is asked to do besides starting. */
export type CliAction = 'start' | 'help' | 'version' | 'check';

/** Every flag the command takes (src/master/command/usage.ts prints them). */
export const CLI_OPTIONS = {
  config: { type: 'string' },
  port: { type: 'string' },
  workers: { type: 'string' },
  'admin-port': { type: 'string' },
  pretty: { type: 'boolean' },
  check: { type: 'boolean', short: 't' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

function portFlag(name: string, value: string): number | string {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) return `${name}: expected a port number (0-65535), got ${JSON.stringify(value)}`;
  return Number(value);
}

/** Parses the command line; a bad flag is a one-line error. */
export function parseCli(argv: readonly string[]): { ok: true; flags: CliFlags; action: CliAction } | { ok: false; message: string } {
  let values: { [K in keyof typeof CLI_OPTIONS]?: (typeof CLI_OPTIONS)[K]['type'] extends 'string' ? string : boolean };
  try {
    ({ values } = parseArgs({ args: [...argv], options: CLI_OPTIONS, strict: true, allowPositionals: false }));
  } catch (error) {
    // parseArgs explains some errors over several lines; the contract is one line.
    return { ok: false, message: `command line: ${(error as Error).message.split('\n')[0]} (see --help)` };
  }
  const flags: { -readonly [K in keyof CliFlags]: CliFlags[K] } = {};
  if (values.config !== undefined) flags.config = values.config;
  for (const [name, value, set] of [
    ['--port', values.port, (port: number) => (flags.port = port)],
    ['--admin-port', values['admin-port'], (port: number) => (flags.adminPort = port)],
  ] as const) {
    if (value === undefined) continue;
    const port = portFlag(name, value);
    if (typeof port === 'string') return { ok: false, message: port };
    set(port);
  }
  if (values.workers !== undefined) {
    if (values.workers === 'auto') flags.workers = 'auto';
    else if (/^[1-9]\d{0,3}$/.test(values.workers)) flags.workers = Number(values.workers);
    else return { ok: false, message: `--workers: expected a positive integer or "auto", got ${JSON.stringify(values.workers)}` };
  }
  if (values.pretty === true) flags.pretty = true;
  const action: CliAction = values.help ? 'help' : values.version ? 'version' : values.check ? 'check' : 'start';
  return { ok: true, flags, action };
}

/** Freezes a plain-data tree so that a validated config can never change under the master. */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/**
 * Validates a config object (already read) and applies the flags. Pure apart
 * from `availableParallelism()` for `"auto"`; throws nothing.
 */
export function resolveConfig(input: unknown, flags: CliFlags, configPath: string | null): LoadResult {
  const withFlags = applyFlags(input, flags);
  const file = configPath === null ? null : displayPath(configPath);
  const where = file === null ? '' : `${file}: `;
  const parsed = configSchema.safeParse(withFlags);
  if (!parsed.success) {
    const schema = configJsonSchema();
    return failure(parsed.error.issues.map((issue) => formatIssue(withFlags, issue, schema, file)));
  }
  const config = parsed.data;
  const errors: string[] = [];
  for (const [path, list] of [
    ['proxyProtocol.trustedFrom', config.proxyProtocol.trustedFrom],
    ['limits.perClient.exempt', config.limits.perClient?.exempt ?? []],
    ['cluster.peer.trustedFrom', config.cluster?.peer.trustedFrom ?? []],
  ] as const) {
    try {
      CidrList.parse(list);
    } catch (error) {
      errors.push(`${where}${path}: ${(error as Error).message}`);
    }
  }
  if (errors.length > 0) return failure(errors);
  const base = configPath ? dirname(configPath) : process.cwd();
  const resolved: ResolvedConfig = {
    ...config,
    configPath,
    // No app named: the package's own demo app, wherever the package is installed.
    appPath: appGiven(input) ? resolve(base, config.workers.app) : DEMO_APP_PATH,
    workerCount: config.workers.count === 'auto' ? availableParallelism() : config.workers.count,
    tls: config.tls && {
      ...config.tls,
      cert: resolve(base, config.tls.cert),
      key: resolve(base, config.tls.key),
      ...(config.tls.ca === undefined ? {} : { ca: resolve(base, config.tls.ca) }),
    },
  };
  return { ok: true, config: deepFreeze(resolved) };
}

/** The package's root: three levels up from dist/src/shared/config (or, run from the sources by a TypeScript loader, from src/shared/config). */
const PACKAGE_ROOT = resolve(__dirname, '..', '..', '..');
/** The installed package's directory (where package.json is). */
export const PACKAGE_DIR = basename(PACKAGE_ROOT) === 'dist' ? dirname(PACKAGE_ROOT) : PACKAGE_ROOT;
/** The built demo app (dist/workers/demo-app.js), the default `workers.app`. */
export const DEMO_APP_PATH = basename(PACKAGE_ROOT) === 'dist' ? join(PACKAGE_ROOT, 'workers', 'demo-app.js') : join(PACKAGE_ROOT, 'dist', 'workers', 'demo-app.js');

function appGiven(input: unknown): boolean {
  return asObject(asObject(input).workers).app !== undefined;
}

function applyFlags(input: unknown, flags: CliFlags): unknown {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return input;
  const copy: Record<string, unknown> = { ...(input as Record<string, unknown>) };
  if (flags.port !== undefined) copy.listen = { ...asObject(copy.listen), port: flags.port };
  if (flags.workers !== undefined) copy.workers = { ...asObject(copy.workers), count: flags.workers };
  // --admin-port turns the admin API on where the file turned it off: the flag is the later word.
  if (flags.adminPort !== undefined) copy.admin = { ...asObject(copy.admin), port: flags.adminPort };
  if (flags.pretty === true) copy.log = { ...asObject(copy.log), pretty: true };
  return copy;
}

/** A config file's name as the user would type it: relative to the current directory when inside it. */
export function displayPath(path: string): string {
  const relativePath = relative(process.cwd(), path);
  return relativePath !== '' && !relativePath.startsWith('..') && !isAbsolute(relativePath) ? relativePath : path;
}

function asObject(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/**
 * Loads the config for the command line: `--config FILE` or `./config.json`
 * (built-in defaults when the default file is absent), then the flags.
 */
export function loadConfig(argv: readonly string[], cwd = process.cwd()): LoadResult {
  const cli = parseCli(argv);
  if (!cli.ok) return failure([cli.message]);
  const path = resolve(cwd, cli.flags.config ?? 'config.json');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (cli.flags.config === undefined && (error as NodeJS.ErrnoException).code === 'ENOENT') {
      return resolveConfig({}, cli.flags, null);
    }
    return failure([`${displayPath(path)}: cannot read config (${(error as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch (error) {
    return failure([`${displayPath(path)}: not valid JSON (${(error as Error).message})`]);
  }
  return validateConfig(input, cli.flags, path);
}

/**
 * {@link resolveConfig}, then the certificate material read once: a wrong
 * path or a key that does not match is one clear line at start, not a
 * crash-looping worker. What the command line and the programmatic API both use.
 */
export function validateConfig(input: unknown, flags: CliFlags, configPath: string | null): LoadResult {
  const result = resolveConfig(input, flags, configPath);
  if (result.ok && result.config.tls) {
    const material = loadTlsMaterial(result.config.tls);
    if (!material.ok) return failure([`${result.config.configPath === null ? '' : `${displayPath(result.config.configPath)}: `}${material.message}`]);
  }
  return result;
}
