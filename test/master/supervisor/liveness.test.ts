import t from 'tap';
import { Liveness } from '../../../src/master/supervisor/liveness.js';

const LIMITS = { silentMs: 3000, ackTimeoutMs: 1000 };
const TICK = 250;

/** Runs check() every TICK from `from` to `to` (inclusive) and returns the last verdict. */
function tickUntil(liveness: Liveness, from: number, to: number): ReturnType<Liveness['check']> {
  let verdict: ReturnType<Liveness['check']> = null;
  for (let now = from; now <= to; now += TICK) verdict = liveness.check(now, LIMITS);
  return verdict;
}

t.test('a worker that keeps talking and acknowledging is responsive', async (t) => {
  const liveness = new Liveness(0);
  for (let now = 0; now <= 20_000; now += TICK) {
    liveness.deliveredSome(1);
    liveness.answeredOne();
    liveness.heard(now);
    t.equal(liveness.check(now, LIMITS), null);
  }
  t.equal(liveness.unacked, 0);
});

t.test('silence for silentMs makes it unresponsive, and a word makes it responsive again', async (t) => {
  const liveness = new Liveness(0);
  t.equal(tickUntil(liveness, 0, 2750), null, 'still within silentMs');
  t.equal(liveness.check(3000, LIMITS), 'silent');
  t.equal(liveness.silentFor(3000), 3000);
  liveness.heard(3100);
  t.equal(liveness.check(3250, LIMITS), null);
});

t.test('a hand-off left unacknowledged for ackTimeoutMs is an ack timeout, even while heartbeats arrive', async (t) => {
  const liveness = new Liveness(0);
  tickUntil(liveness, 0, 1000);
  liveness.deliveredSome(1);
  let verdict = null;
  let at = 0;
  for (let now = 1250; now <= 3000 && verdict === null; now += TICK) {
    liveness.heard(now);
    verdict = liveness.check(now, LIMITS);
    at = now;
  }
  t.equal(verdict, 'ack-timeout');
  // Delivered just after the 1000 checkpoint: the 1250 one is the first that includes it.
  t.equal(at, 1250 + LIMITS.ackTimeoutMs, 'detected within one tick past the timeout');
  liveness.answeredOne();
  liveness.heard(at + TICK);
  t.equal(liveness.check(at + TICK, LIMITS), null, 'the late ack clears it');
});

t.test('hand-offs acknowledged within the timeout never trip it, however many are in flight', async (t) => {
  const liveness = new Liveness(0);
  const inFlight: number[] = [];
  for (let now = 0; now <= 10_000; now += TICK) {
    for (let i = 0; i < 50; i++) {
      liveness.deliveredSome(1);
      inFlight.push(now);
    }
    // Each is acknowledged 900 ms after delivery.
    while (inFlight.length > 0 && (inFlight[0] as number) <= now - 900) {
      inFlight.shift();
      liveness.answeredOne();
    }
    liveness.heard(now);
    t.equal(liveness.check(now, LIMITS), null, `at ${now}`);
  }
  t.ok(liveness.unacked > 0, 'some were in flight all along');
});

t.test('the checkpoints stay few however long it runs', async (t) => {
  const liveness = new Liveness(0);
  for (let now = 0; now <= 3_600_000; now += TICK) {
    liveness.heard(now);
    liveness.check(now, LIMITS);
  }
  const checkpoints = (liveness as unknown as { checkpoints: unknown[] }).checkpoints;
  t.ok(checkpoints.length <= LIMITS.ackTimeoutMs / TICK + 2, `${checkpoints.length} checkpoints`);
});
