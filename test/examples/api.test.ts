import t from 'tap';
import { pollUntil } from '../helpers/balancer.js';
import { requestFrom, startExample } from '../helpers/examples.js';

t.test('api example: startBalancer() serves the Express app; a session holds; SIGTERM stops it', async (t) => {
  const app = await startExample(t, 'api');
  const login = await requestFrom(app.port, '127.0.0.1', 'POST', '/login?user=ada');
  t.equal(login.status, 200, 'logged in');
  for (let i = 0; i < 5; i++) {
    const me = await requestFrom(app.port, '127.0.0.1', 'GET', '/me', { cookie: login.setCookie as string });
    t.equal(me.body.user, 'ada', `request ${i + 1} found the session`);
  }
  const served = await pollUntil(() => app.logs.find((line) => typeof line.msg === 'string' && line.msg.startsWith('serving on')));
  t.equal((served.workers as unknown[]).length, 2, 'two workers, as the script asks');
  t.equal(await app.stop(), 0, 'SIGTERM: exit 0 after the drain');
});
