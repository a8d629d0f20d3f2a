import t from 'tap';
import fc from 'fast-check';
import { cookieValue } from '../../../src/shared/key/cookie.js';

t.test('cookieValue', async (t) => {
  const table: Array<{ name: string; header: string; cookie?: string; want: string | null }> = [
    { name: 'only cookie', header: 'sid=abc', want: 'abc' },
    { name: 'among others', header: 'a=1; sid=abc; b=2', want: 'abc' },
    { name: 'last', header: 'a=1; sid=abc', want: 'abc' },
    { name: 'first occurrence wins', header: 'sid=one; sid=two', want: 'one' },
    { name: 'first occurrence empty: no key', header: 'sid=; sid=two', want: null },
    { name: 'empty at the end', header: 'a=1; sid=', want: null },
    { name: 'quoted', header: 'sid="abc"; a=1', want: 'abc' },
    { name: 'quoted empty', header: 'sid=""', want: null },
    { name: 'lone DQUOTE kept', header: 'sid="', want: '"' },
    { name: 'one-sided quote kept', header: 'sid="abc', want: '"abc' },
    { name: 'name as suffix of another', header: 'xsid=evil; sid=good', want: 'good' },
    { name: 'suffix only', header: 'xsid=evil', want: null },
    { name: 'name as prefix of another', header: 'sidx=evil; sid=good', want: 'good' },
    { name: 'name inside a value', header: 'a=sid=evil; sid=good', want: 'good' },
    { name: 'name after a space inside a value', header: 'a=x sid=evil', want: null },
    { name: 'no spaces after ;', header: 'a=1;sid=abc;b=2', want: 'abc' },
    { name: 'OWS around ; and before =', header: 'a=1 ;\t sid \t= abc ; b=2', want: 'abc' },
    { name: 'case-sensitive name', header: 'SID=abc', want: null },
    { name: 'name without =', header: 'sid; sid=abc', want: 'abc' },
    { name: 'name at the very end', header: 'a=1; sid', want: null },
    { name: 'value with = inside', header: 'sid=a=b', want: 'a=b' },
    { name: 'absent', header: 'a=1; b=2', want: null },
    { name: 'empty header', header: '', want: null },
    { name: 'empty cookie name in rules', header: '=abc', cookie: '', want: null },
    { name: 'value with CR/LF/NUL is returned as is', header: 'sid=a\r\n\0b', want: 'a\r\n\0b' },
  ];
  for (const { name, header, cookie = 'sid', want } of table) t.equal(cookieValue(header, cookie), want, name);
});

t.test('thousands of cookies and 64 KiB values', async (t) => {
  const many = Array.from({ length: 5000 }, (_, i) => `c${i}=${i}`).join('; ');
  t.equal(cookieValue(`${many}; sid=last`, 'sid'), 'last');
  t.equal(cookieValue(`${many}; xsid=nope`, 'sid'), null);
  const sids = Array.from({ length: 5000 }, () => 'xsid=1').join('; ');
  t.equal(cookieValue(sids, 'sid'), null, 'many near misses');
  const big = 'v'.repeat(65536);
  t.equal(cookieValue(`a=${big}; sid=${big}`, 'sid'), big);
  t.equal(cookieValue(' '.repeat(65536) + 'sid=1', 'sid'), '1');
});

t.test('property: never throws; a found value has no ; and no outer OWS', async (t) => {
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom(...'sid=;" \txa1'.split('')), maxLength: 60 }), (header) => {
      const value = cookieValue(header, 'sid');
      return value === null || (value.length > 0 && !value.includes(';') && value.trim() === value);
    }),
    { numRuns: 5000 },
  );
  t.pass();
});
