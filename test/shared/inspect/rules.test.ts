import fc from 'fast-check';
import t from 'tap';
import { compileInspector, hostName, normalisePath, splitTarget, type InspectConfig } from '../../../src/shared/inspect/rules.js';
import { scannerRequests } from '../../helpers/scanner-log.js';

const API_ONLY: InspectConfig = {
  methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
  hosts: ['example.com', '*.example.com'],
  paths: { allow: ['^/api(/|$)'], deny: ['\\.php$'] },
  maxUrlBytes: 2048,
};


t.test('allowed requests: null', async (t) => {
  const inspect = compileInspector(API_ONLY);
  for (const [method, target, host] of [
    ['GET', '/api', 'example.com'],
    ['GET', '/api/', 'example.com'],
    ['GET', '/api/x?y=1', 'app.example.com:8443'],
    ['POST', '/api/users/7', 'EXAMPLE.COM'],
    ['GET', '/api/a/./b', 'example.com.'],
    ['GET', 'http://a.b.example.com/api/x', 'ignored.invalid'],
    ['OPTIONS', '/api/x', 'example.com'],
  ] as const) {
    t.equal(inspect(method, target, host), null, `${method} ${target} (${host})`);
  }
});

t.test('refusals: status, rule, order', async (t) => {
  const inspect = compileInspector(API_ONLY);
  const cases = [
    { name: 'too long, even with a bad method and host', method: 'PROPFIND', target: `/api/${'a'.repeat(3000)}`, host: 'evil.test', status: 414, rule: 'url-length' },
    { name: 'exactly one byte over', method: 'GET', target: `/api/${'a'.repeat(2048 - 4)}`, host: 'example.com', status: 414, rule: 'url-length' },
    { name: 'unlisted method', method: 'PROPFIND', target: '/api', host: 'example.com', status: 405, rule: 'method' },
    { name: 'methods are case-sensitive', method: 'get', target: '/api', host: 'example.com', status: 405, rule: 'method' },
    { name: 'wrong host', method: 'GET', target: '/api', host: 'evil.test', status: 421, rule: 'host' },
    { name: 'bare suffix is not a subdomain', method: 'GET', target: '/api', host: 'badexample.com', status: 421, rule: 'host' },
    { name: 'no host at all', method: 'GET', target: '/api', host: undefined, status: 421, rule: 'host' },
    { name: 'absolute-form host wins over Host', method: 'GET', target: 'http://evil.test/api', host: 'example.com', status: 421, rule: 'host' },
    { name: 'denied path', method: 'GET', target: '/api/setup.php', host: 'example.com', status: 404, rule: 'path-deny' },
    { name: 'deny sees through percent-encoding', method: 'GET', target: '/api/setup.ph%70', host: 'example.com', status: 404, rule: 'path-deny' },
    { name: 'not allowed', method: 'GET', target: '/phpmyadmin/', host: 'example.com', status: 404, rule: 'path-allow' },
    { name: 'prefix without a boundary', method: 'GET', target: '/apix', host: 'example.com', status: 404, rule: 'path-allow' },
    { name: 'dot segments resolved first', method: 'GET', target: '/api/../phpmyadmin/', host: 'example.com', status: 404, rule: 'path-allow' },
    { name: 'encoded dot segments too', method: 'GET', target: '/api/%2e%2e/admin', host: 'example.com', status: 404, rule: 'path-allow' },
    { name: 'asterisk-form has no /api path', method: 'OPTIONS', target: '*', host: 'example.com', status: 404, rule: 'path-allow' },
  ] as const;
  for (const c of cases) {
    const refusal = inspect(c.method, c.target, c.host);
    t.equal(refusal?.status, c.status, `${c.name}: status`);
    t.equal(refusal?.rule, c.rule, `${c.name}: rule`);
  }
  t.equal(inspect('PROPFIND', '/api', 'example.com')?.allow, 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS', '405 carries Allow');
});

t.test('every scanner request line is refused with 404 by an /api allow rule', async (t) => {
  const inspect = compileInspector({ paths: { allow: ['^/api(/|$)'] } });
  const requests = scannerRequests();
  t.equal(requests.length, 15, 'fifteen lines');
  t.ok(requests.some((r) => r.target.length > 1000), 'the research scanner\'s huge URL is among them');
  for (const { method, target } of requests) t.equal(inspect(method, target, 'example.com')?.status, 404, target.slice(0, 60));
});

t.test('each section alone; nothing configured allows everything', async (t) => {
  t.equal(compileInspector({})('BREW', '/anything.php', undefined), null);
  t.equal(compileInspector({ methods: ['GET'] })('GET', '/x.php', 'evil.test'), null);
  t.equal(compileInspector({ paths: { deny: ['^/admin'] } })('GET', '/api', undefined), null);
  t.equal(compileInspector({ paths: { deny: ['^/admin'] } })('GET', '//admin', undefined)?.rule, 'path-deny', 'merged slashes');
  t.equal(compileInspector({ maxUrlBytes: 5 })('GET', '/abcd', undefined), null, 'at the limit is allowed');
  t.equal(compileInspector({ hosts: ['[::1]', '127.0.0.1'] })('GET', '/', '[::1]:8080'), null, 'IPv6 literal with port');
  t.equal(compileInspector({ hosts: ['[::1]', '127.0.0.1'] })('GET', '/', '127.0.0.1:80'), null, 'IPv4 with port');
  t.equal(compileInspector({ hosts: ['*.example.com'] })('GET', '/', 'example.com')?.rule, 'host', '*.x does not match x itself');
});

t.test('the same refusal object every time (the response bytes are cached per refusal)', async (t) => {
  const inspect = compileInspector(API_ONLY);
  t.equal(inspect('GET', '/a', 'example.com'), inspect('GET', '/b', 'example.com'));
  t.ok(Object.isFrozen(inspect('GET', '/a', 'example.com')));
});

t.test('normalisePath', async (t) => {
  for (const [input, expected] of [
    ['/', '/'],
    ['/api/x', '/api/x'],
    ['/a//b///c', '/a/b/c'],
    ['/a/./b', '/a/b'],
    ['/a/b/..', '/a/'],
    ['/a/.', '/a/'],
    ['/..', '/'],
    ['/../../etc/passwd', '/etc/passwd'],
    ['/%41%2f%2E%2E/b', '/b'],
    ['/bad%zzescape%', '/bad%zzescape%'],
    ['/%', '/%'],
    ['/.well-known/x', '/.well-known/x'],
    ['*', '*'],
  ] as const) {
    t.equal(normalisePath(input), expected, input);
  }
});

t.test('splitTarget and hostName', async (t) => {
  t.same(splitTarget('/p?q#f'), { authority: undefined, path: '/p' });
  t.same(splitTarget('http://user@Host.example:81/p/q?x'), { authority: 'Host.example:81', path: '/p/q' });
  t.same(splitTarget('https://h?x'), { authority: 'h', path: '/' });
  t.same(splitTarget('h.example:443'), { authority: undefined, path: 'h.example:443' });
  t.equal(hostName('Example.COM.:8080'), 'example.com');
  t.equal(hostName('[::1]:80'), '[::1]');
});

t.test('property: never throws, always null or a known refusal', async () => {
  const inspect = compileInspector(API_ONLY);
  fc.assert(
    fc.property(fc.string(), fc.string({ maxLength: 3000 }), fc.option(fc.string(), { nil: undefined }), (method, target, host) => {
      const refusal = inspect(method, target, host);
      return refusal === null || [404, 405, 414, 421].includes(refusal.status);
    }),
  );
  // a normalised path has no empty, '.' or '..' segment left for a pattern to be fooled by
  fc.assert(
    fc.property(fc.stringMatching(/^\/[a-z.%2eEfF/]{0,30}$/), (path) => {
      const once = normalisePath(path);
      return once.startsWith('/') && !once.includes('//') && !/\/\.\.?(\/|$)/.test(once);
    }),
  );
});
