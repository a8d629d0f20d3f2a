import t from 'tap';
import { resolveConfig } from '../../../src/shared/config/load.js';

const withInspect = (inspect: unknown): unknown => ({ inspect });

t.test('invalid inspect sections: one line naming the path', async (t) => {
  const cases = [
    { name: 'bad deny regex', input: { paths: { deny: ['\\.php$', '('] } }, message: /^inspect\.paths\.deny\.1: invalid regular expression \(.*\), got "\("$/ },
    { name: 'bad allow regex', input: { paths: { allow: ['[a-'] } }, message: /^inspect\.paths\.allow\.0: invalid regular expression/ },
    { name: 'host with a path', input: { hosts: ['example.com/x'] }, message: /^inspect\.hosts\.0: expected a host name/ },
    { name: 'wildcard in the middle', input: { hosts: ['a.*.example.com'] }, message: /^inspect\.hosts\.0: expected a host name/ },
    { name: 'method not a token', input: { methods: ['GE T'] }, message: /^inspect\.methods\.0: expected an HTTP method token/ },
    { name: 'maxUrlBytes zero', input: { maxUrlBytes: 0 }, message: /^inspect\.maxUrlBytes: expected a positive integer/ },
    { name: 'unknown key', input: { path: {} }, message: /^inspect: unknown key "path"/ },
  ];
  for (const c of cases) {
    const result = resolveConfig(withInspect(c.input), {}, null);
    t.equal(result.ok, false, `${c.name}: refused`);
    if (!result.ok) t.match(result.message, c.message, c.name);
  }
});

t.test('valid inspect sections', async (t) => {
  const result = resolveConfig(
    withInspect({ methods: ['GET', 'HEAD'], hosts: ['example.com', '*.example.com', 'EXAMPLE.org.', '127.0.0.1', '[::1]'], paths: { allow: ['^/api(/|$)'], deny: ['\\.php$'] }, maxUrlBytes: 2048 }),
    {},
    null,
  );
  t.equal(result.ok, true, result.ok ? 'ok' : result.message);
});
