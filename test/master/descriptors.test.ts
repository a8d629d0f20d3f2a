import t from 'tap';
import { DescriptorBudget, descriptorCeiling, descriptorReserve, parseOpenFileLimit } from '../../src/master/descriptors.js';

t.test('the soft open-files limit is read from /proc/<pid>/limits text', async (t) => {
  const text = [
    'Limit                     Soft Limit           Hard Limit           Units',
    'Max processes             95345                95345                processes',
    'Max open files            256                  20000                files',
    'Max locked memory         8388608              8388608              bytes',
  ].join('\n');
  t.equal(parseOpenFileLimit(text), 256, 'the soft one, not the hard one');
  t.equal(parseOpenFileLimit(text.replace('256    ', 'unlimited')), null, 'unlimited: no ceiling');
  t.equal(parseOpenFileLimit('Max processes 1 1 processes'), null, 'absent: no ceiling');
});

t.test('the reserve is 1/16 of the limit, within 32 and 256', async (t) => {
  t.equal(descriptorReserve(256), 32);
  t.equal(descriptorReserve(1024), 64);
  t.equal(descriptorReserve(20_000), 256);
  t.equal(descriptorReserve(100), 32);
});

t.test("this process's ceiling is its own limit less the reserve", async (t) => {
  const ceiling = descriptorCeiling();
  if (process.platform !== 'linux') {
    t.equal(ceiling, null);
    return;
  }
  const { readFileSync } = await import('node:fs');
  const limit = parseOpenFileLimit(readFileSync('/proc/self/limits', 'utf8'));
  t.equal(ceiling, limit === null ? null : limit - descriptorReserve(limit));
});

t.test('the budget: a descriptor at the ceiling proves it full; the held count then stands in for it', async (t) => {
  const budget = new DescriptorBudget(224);
  t.notOk(budget.isFull(100, 90), 'below the ceiling, never seen full: room');
  t.ok(budget.isFull(224, 200), 'at the ceiling: full');
  // One connection was closed to make room; the next accept takes its low number.
  t.ok(budget.isFull(31, 200), 'a low number while holding as many as then: still full');
  t.ok(budget.isFull(40, 210), 'holding more: full');
  t.notOk(budget.isFull(45, 199), 'holding fewer: room');
  t.notOk(budget.isFull(45, 149), 'a quarter fewer: room, and the mark is forgotten');
  t.notOk(budget.isFull(45, 199), 'forgotten: the number decides again');
  t.ok(budget.isFull(230, 150), 'past the ceiling: full again, at the new count');
  t.ok(budget.isFull(20, 150));
});
