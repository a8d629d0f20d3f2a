import type { MasterMessage } from '../shared/wire/ipc.js';

/** What the master tells a new worker before anything else (its config travels over IPC so that no secret is in the environment). */
export type WorkerStart = Extract<MasterMessage, { type: 'start' }>;

let received: WorkerStart | null = null;

/** Records the master's start message (src/worker/main.ts, once). */
export function setWorkerStart(start: WorkerStart): void {
  received = start;
}

/** The master's start message; the runtime is loaded only after it arrived. */
export function workerStart(): WorkerStart {
  if (received === null) throw new Error('the worker runtime was loaded before the master sent its start message');
  return received;
}
