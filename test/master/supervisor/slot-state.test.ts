import t from 'tap';
import { canTransition, takesConnections, type SlotState } from '../../../src/master/supervisor/slot-state.js';

const STATES: readonly SlotState[] = ['empty', 'starting', 'ready', 'unresponsive', 'draining', 'dead'];
const ALLOWED = new Set([
  'empty→starting',
  'starting→ready',
  'starting→draining',
  'starting→dead',
  'ready→unresponsive',
  'unresponsive→ready',
  'unresponsive→draining',
  'unresponsive→dead',
  'ready→draining',
  'ready→dead',
  'draining→dead',
]);

t.test('exactly the lifecycle transitions are allowed', async (t) => {
  for (const from of STATES) {
    for (const to of STATES) {
      t.equal(canTransition(from, to), ALLOWED.has(`${from}→${to}`), `${from} → ${to}`);
    }
  }
});

t.test('only a ready worker takes connections', async (t) => {
  for (const state of STATES) t.equal(takesConnections(state), state === 'ready', state);
});
