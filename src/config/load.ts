import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { z } from 'zod';
import { CidrList } from '../ip/address.js';
import { configSchema, type Config } from './schema.js';
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

/** The result of loading: a frozen config, or one line saying what is wrong. */
export type LoadResult = { readonly ok: true; readonly config: ResolvedConfig } | { readonly ok: false; readonly message: string };

/** Command-line flags: they override the file. */
export interface CliFlags {
  readonly config?: string;
  readonly port?: number;
  readonly workers?: number | 'auto';
}

/** Parses `--config FILE --port N --workers N`; a bad flag is a one-line error. */
export function parseCli(argv: readonly string[]): { ok: true; flags: CliFlags } | { ok: false; message: string } {
  let values: { config?: string | undefined; port?: string | undefined; workers?: string | undefined };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { config: { type: 'string' }, port: { type: 'string' }, workers: { type: 'string' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    // parseArgs explains some errors over several lines; the contract is one line.
    return { ok: false, message: `command line: ${(error as Error).message.split('\n')[0]}` };
  }
  const flags: { config?: string; port?: number; workers?: number | 'auto' } = {};
  if (values.config !== undefined) flags.config = values.config;
  if (values.port !== undefined) {
    if (!/^\d{1,5}$/.test(values.port) || Number(values.port) > 65535) {
      return { ok: false, message: `--port: expected a port number (0-65535), got ${JSON.stringify(values.port)}` };
    }
    flags.port = Number(values.port);
  }
  if (values.workers !== undefined) {
    if (values.workers === 'auto') flags.workers = 'auto';
    else if (/^[1-9]\d{0,3}$/.test(values.workers)) flags.workers = Number(values.workers);
    else return { ok: false, message: `--workers: expected a positive integer or "auto", got ${JSON.stringify(values.workers)}` };
  }
  return { ok: true, flags };
}

/** Reads the value at a config path, to quote what the user actually wrote. */
function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let node = input;
  for (const segment of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PropertyKey, unknown>)[segment];
  }
  return node;
}

/** One line for the first zod issue: `workers.count: expected a positive integer, got "two"`. */
export function formatIssue(input: unknown, issue: z.core.$ZodIssue): string {
  const where = issue.path.length > 0 ? issue.path.map(String).join('.') : '(config)';
  if (issue.code === 'unrecognized_keys') {
    return `${where}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
  }
  const message = issue.message.replace(/^Invalid input: /, '').replace(/, received \w+$/, '');
  const got = valueAt(input, issue.path);
  return `${where}: ${message}, got ${got === undefined ? 'nothing' : JSON.stringify(got)}`;
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
  const parsed = configSchema.safeParse(withFlags);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    return { ok: false, message: first ? formatIssue(withFlags, first) : 'config: invalid' };
  }
  const config = parsed.data;
  try {
    CidrList.parse(config.proxyProtocol.trustedFrom);
  } catch (error) {
    return { ok: false, message: `proxyProtocol.trustedFrom: ${(error as Error).message}` };
  }
  try {
    CidrList.parse(config.limits.perClient?.exempt ?? []);
  } catch (error) {
    return { ok: false, message: `limits.perClient.exempt: ${(error as Error).message}` };
  }
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

/** The package's root: two levels up from dist/src/config (or, run from the sources by a TypeScript loader, from src/config). */
const PACKAGE_ROOT = resolve(__dirname, '..', '..');
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
  return copy;
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
  if (!cli.ok) return cli;
  const path = resolve(cwd, cli.flags.config ?? 'config.json');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (cli.flags.config === undefined && (error as NodeJS.ErrnoException).code === 'ENOENT') {
      return resolveConfig({}, cli.flags, null);
    }
    return { ok: false, message: `${path}: cannot read config (${(error as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch (error) {
    return { ok: false, message: `${path}: not valid JSON (${(error as Error).message})` };
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
    if (!material.ok) return { ok: false, message: material.message };
  }
  return result;
}
