import t from 'tap';
import { LogLimiter } from '../../../src/shared/log/log-limiter.js';

t.test('at most `burst` lines per reason per window, then a count of the suppressed', async (t) => {
  let now = 1000;
  const limiter = new LogLimiter(3, 1000, () => now);
  const admitted = Array.from({ length: 10 }, () => limiter.admit('ERR_A'));
  t.same(admitted, [0, 0, 0, -1, -1, -1, -1, -1, -1, -1], 'three lines, then silence');
  t.equal(limiter.admit('ERR_B'), 0, 'reasons are limited separately');
  now += 999;
  t.equal(limiter.admit('ERR_A'), -1, 'still the same window');
  now += 1;
  t.equal(limiter.admit('ERR_A'), 8, 'the first line of the next window says 8 were suppressed');
  t.equal(limiter.admit('ERR_A'), 0);
  now += 5000;
  t.equal(limiter.admit('ERR_A'), 0, 'nothing suppressed in the last window');
});

t.test('defaults: 10 lines a second', async (t) => {
  const limiter = new LogLimiter();
  const admitted = Array.from({ length: 50 }, () => limiter.admit('x')).filter((n) => n >= 0).length;
  t.equal(admitted, 10);
});
