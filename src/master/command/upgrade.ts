import { spawn } from 'node:child_process';
import type { Server } from 'node:net';
import type { Logger } from 'pino';
import type { ListenerSource, Listeners } from '../api.js';

/**
 * Upgrading the balancer itself without closing its ports (nginx's USR2,
 * HAProxy's -x): the running master starts a new one with the same command
 * line and hands it its listening sockets over the IPC channel between them.
 * Both accept from the same sockets (one kernel queue each: no connection is
 * dropped at the switch) until the new one says it is ready; then the old one
 * stops accepting, drains its workers and exits.
 */

/** Set in the new master's environment: the old master's pid. */
const UPGRADE_VARIABLE = 'STICKY_UPGRADE_FROM';

type UpgradeMessage =
  /** New → old: its workers are ready; send the sockets. */
  | { readonly type: 'upgrade-send-listeners' }
  | { readonly type: 'upgrade-listener'; readonly name: keyof Listeners }
  | { readonly type: 'upgrade-listeners-sent' }
  | { readonly type: 'upgrade-ready'; readonly pid: number };

function isUpgradeMessage(value: unknown): value is UpgradeMessage {
  return value !== null && typeof value === 'object' && typeof (value as { type?: unknown }).type === 'string' && (value as { type: string }).type.startsWith('upgrade-');
}

/** How long the old master waits for the new one to be ready before it gives up (and keeps serving). */
const UPGRADE_TIMEOUT_MS = 120_000;

/**
 * In the old master: starts the new one, hands it the sockets, and resolves
 * with its pid once it is ready; null when it exited or timed out first (this
 * master then simply goes on serving).
 */
export function startSuccessor(listeners: Listeners, log: Logger): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      // Its own process group: a Ctrl-C meant for this master does not stop its successor.
      detached: true,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, [UPGRADE_VARIABLE]: String(process.pid) },
      serialization: 'json',
    });
    let settled = false;
    const finish = (pid: number | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (pid === null) {
        if (child.exitCode === null) child.kill('SIGTERM');
      } else {
        child.disconnect();
        child.unref();
      }
      resolve(pid);
    };
    const timer = setTimeout(() => {
      log.error({ pid: child.pid, timeoutMs: UPGRADE_TIMEOUT_MS }, 'upgrade: the new master was not ready in time; this one keeps serving');
      finish(null);
    }, UPGRADE_TIMEOUT_MS);
    child.on('error', (error) => {
      log.error({ err: error.message }, 'upgrade: cannot start a new master; this one keeps serving');
      finish(null);
    });
    child.on('exit', (code, signal) => {
      if (!settled) log.error({ pid: child.pid, code, signal }, 'upgrade: the new master exited before it was ready; this one keeps serving');
      finish(null);
    });
    child.on('message', (message: unknown) => {
      if (!isUpgradeMessage(message)) return;
      if (message.type === 'upgrade-ready') finish(message.pid);
      if (message.type === 'upgrade-send-listeners' && !settled) {
        // Only now: a socket it holds accepts from the shared queue at once, so it gets them when it can serve.
        child.send({ type: 'upgrade-listener', name: 'listen' } satisfies UpgradeMessage, listeners.listen);
        if (listeners.admin !== null) child.send({ type: 'upgrade-listener', name: 'admin' } satisfies UpgradeMessage, listeners.admin);
        if (listeners.peer !== null) child.send({ type: 'upgrade-listener', name: 'peer' } satisfies UpgradeMessage, listeners.peer);
        child.send({ type: 'upgrade-listeners-sent' } satisfies UpgradeMessage);
      }
    });
    log.info({ successor: child.pid }, 'upgrade: new master starting; it gets the listening sockets when its workers are ready');
  });
}

/**
 * In a new master: where its listening sockets come from (the old master),
 * or null when this process was not started by an upgrade.
 */
export function inheritedListeners(): ListenerSource | null {
  if (process.env[UPGRADE_VARIABLE] === undefined || !process.send) return null;
  // Not passed on to the workers.
  delete process.env[UPGRADE_VARIABLE];
  return {
    take: (onListener) =>
      new Promise((resolve) => {
        const onMessage = (message: unknown, handle: unknown): void => {
          if (!isUpgradeMessage(message)) return;
          // In this very call: the socket is already accepting for a server that does nothing with what it accepts.
          if (message.type === 'upgrade-listener' && handle !== undefined) onListener(message.name, handle as Server);
          if (message.type === 'upgrade-listeners-sent') {
            process.off('message', onMessage);
            resolve();
          }
        };
        process.on('message', onMessage);
        process.send?.({ type: 'upgrade-send-listeners' } satisfies UpgradeMessage);
      }),
  };
}

/** In a new master, once it serves: tells the old one, and lets go of the channel to it. */
export function announceReady(): void {
  if (!process.send || !process.connected) return;
  process.send({ type: 'upgrade-ready', pid: process.pid } satisfies UpgradeMessage, undefined, {}, () => process.disconnect());
}
