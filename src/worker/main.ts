import { isMessage, type MasterMessage, type WorkerMessage } from '../shared/wire/ipc.js';
import { setWorkerStart } from './start.js';

/**
 * The worker process's entry (node:cluster runs it): waits for the master's
 * start message, which carries the config, then loads the runtime. The config
 * comes over the IPC channel, not the environment, so that secrets in it never
 * reach the app's own child processes or /proc/<pid>/environ.
 */
const onMessage = (message: unknown): void => {
  if (!isMessage<MasterMessage>(message) || message.type !== 'start') return;
  process.off('message', onMessage);
  setWorkerStart(message);
  // Loaded only now: the runtime reads the start message when it loads.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('./runtime.js');
};
process.on('message', onMessage);
// Asked for, not sent unasked: modules preloaded before this one (--import, --require, coverage) let the
// event loop turn first, and a message that arrives with no listener is lost.
process.send?.({ type: 'boot' } satisfies WorkerMessage);
