import t from 'tap';
import { MetricsRequests } from '../../../src/master/supervisor/metrics-requests.js';

t.test('every answer is collected; the request resolves when the last worker answers', async (t) => {
  const asked: Array<{ proc: string; id: number }> = [];
  const requests = new MetricsRequests<string>((proc, id) => asked.push({ proc, id }));
  const answer = requests.ask(['a', 'b'], 10_000);
  t.same(asked.map((a) => a.proc), ['a', 'b']);
  const id = asked[0]?.id as number;
  requests.answered(id + 1, 'a', [{ name: 'other request' }]);
  requests.answered(id, 'a', [{ name: 'x' }]);
  requests.answered(id, 'a', [{ name: 'twice' }]);
  requests.answered(id, 'b', [{ name: 'y' }]);
  t.same(await answer, [[{ name: 'x' }], [{ name: 'y' }]], 'one answer per worker, unknown ids and repeats ignored');
});

t.test("a worker that goes away, or whose request cannot be sent, is not waited for; the timeout bounds the rest", async (t) => {
  const requests = new MetricsRequests<string>((proc, _id, failed) => {
    if (proc === 'broken') failed();
  });
  const answer = requests.ask(['broken', 'dying', 'silent'], 50);
  requests.gone('dying');
  const started = Date.now();
  t.same(await answer, [], 'resolved with what arrived');
  t.ok(Date.now() - started < 5000, 'by the timeout, not never');
  t.same(await requests.ask([], 10), [], 'no worker: at once');
});
