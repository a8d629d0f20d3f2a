import t from 'tap';
import fc from 'fast-check';
import {
  MAX_STICKY_VALUE_BYTES,
  needsStickyCookie,
  readStickyCookie,
  signStickyCookie,
  stickySetCookie,
  verifyStickyCookie,
  type StickyCookieRules,
} from '../../../src/shared/key/sticky-cookie.js';

const RULES: StickyCookieRules = { name: 'srv', secret: 'correct horse battery staple', maxAgeS: 3600 };
const SESSION: StickyCookieRules = { name: 'srv', secret: 'correct horse battery staple' };
const NOW = 1_700_000_000;

t.test('sign → verify round-trips for every slot', async (t) => {
  for (const slot of [0, 1, 7, 99, 1023]) {
    const value = signStickyCookie(slot, NOW, RULES);
    t.ok(value.length <= MAX_STICKY_VALUE_BYTES, `fits the limit: ${value}`);
    t.match(value, /^[0-9]+\.[0-9]+\.[A-Za-z0-9_-]{22}$/, 'only cookie-octets');
    t.same(verifyStickyCookie(value, NOW, RULES), { kind: 'valid', slot, expiresAt: NOW + 3600 });
  }
  const session = signStickyCookie(3, NOW, SESSION);
  t.same(verifyStickyCookie(session, NOW + 10 * 365 * 86400, SESSION), { kind: 'valid', slot: 3, expiresAt: 0 }, 'no maxAgeS: never stale');
});

t.test('expiry is inside the signed value', async (t) => {
  const value = signStickyCookie(1, NOW, RULES);
  t.equal(verifyStickyCookie(value, NOW + 3599, RULES).kind, 'valid', 'one second before expiry');
  t.same(verifyStickyCookie(value, NOW + 3600, RULES), { kind: 'invalid', reason: 'stale' }, 'at expiry');
  // Pushing the expiry forward breaks the MAC.
  const [slot, , mac] = value.split('.');
  t.same(verifyStickyCookie(`${slot}.${NOW + 999_999}.${mac}`, NOW + 4000, RULES), { kind: 'invalid', reason: 'forged' });
  t.same(verifyStickyCookie(`${slot}.0.${mac}`, NOW, RULES), { kind: 'invalid', reason: 'forged' }, 'dropping the expiry is a forgery');
});

t.test('invalid values', async (t) => {
  const good = signStickyCookie(1, NOW, RULES);
  const [, expiry, mac] = good.split('.') as [string, string, string];
  const flipped = (mac[0] === 'A' ? 'B' : 'A') + mac.slice(1);
  const table: Array<{ name: string; input: string; reason: 'malformed' | 'forged' | 'stale' }> = [
    { name: 'empty', input: '', reason: 'malformed' },
    { name: 'plain slot number', input: '1', reason: 'malformed' },
    { name: 'two parts', input: `1.${mac}`, reason: 'malformed' },
    { name: 'leading zero slot', input: `01.${expiry}.${mac}`, reason: 'malformed' },
    { name: 'slot beyond MAX_SLOTS', input: `1024.${expiry}.${mac}`, reason: 'malformed' },
    { name: 'negative slot', input: `-1.${expiry}.${mac}`, reason: 'malformed' },
    { name: 'short mac', input: `1.${expiry}.${mac.slice(1)}`, reason: 'malformed' },
    { name: 'long mac', input: `1.${expiry}.${mac}A`, reason: 'malformed' },
    { name: 'padding in mac', input: `1.${expiry}.${mac.slice(0, 20)}==`, reason: 'malformed' },
    { name: 'standard base64 char', input: `1.${expiry}.+${mac.slice(1)}`, reason: 'malformed' },
    { name: 'too long overall', input: 'x'.repeat(MAX_STICKY_VALUE_BYTES + 1), reason: 'malformed' },
    { name: 'other slot, same mac', input: `2.${expiry}.${mac}`, reason: 'forged' },
    { name: 'one mac character changed', input: `1.${expiry}.${flipped}`, reason: 'forged' },
    { name: 'signed with another secret', input: signStickyCookie(1, NOW, { ...RULES, secret: 'another secret of 16+ chars' }), reason: 'forged' },
    { name: 'signed for another cookie name', input: signStickyCookie(1, NOW, { ...RULES, name: 'other' }), reason: 'forged' },
    { name: 'stale', input: signStickyCookie(1, NOW - 3600, RULES), reason: 'stale' },
  ];
  for (const { name, input, reason } of table) t.same(verifyStickyCookie(input, NOW, RULES), { kind: 'invalid', reason }, name);
  t.same(verifyStickyCookie(null, NOW, RULES), { kind: 'absent' });
});

t.test('readStickyCookie finds the named cookie among others', async (t) => {
  const value = signStickyCookie(5, NOW, RULES);
  t.same(readStickyCookie(`sid=abc; srv=${value}; theme=dark`, NOW, RULES), { kind: 'valid', slot: 5, expiresAt: NOW + 3600 });
  t.same(readStickyCookie(`xsrv=${value}`, NOW, RULES), { kind: 'absent' }, 'a suffix match is not the cookie');
  t.same(readStickyCookie(undefined, NOW, RULES), { kind: 'absent' });
  t.same(readStickyCookie('srv=garbage', NOW, RULES), { kind: 'invalid', reason: 'malformed' });
});

t.test('needsStickyCookie', async (t) => {
  const fresh = verifyStickyCookie(signStickyCookie(2, NOW, RULES), NOW, RULES);
  t.equal(needsStickyCookie(fresh, 2, NOW, RULES), false, 'a fresh cookie for this slot');
  t.equal(needsStickyCookie(fresh, 3, NOW, RULES), true, 'a cookie naming another slot');
  t.equal(needsStickyCookie(fresh, 2, NOW + 1799, RULES), false, 'before half its life');
  t.equal(needsStickyCookie(fresh, 2, NOW + 1801, RULES), true, 'past half its life: refreshed');
  t.equal(needsStickyCookie({ kind: 'absent' }, 2, NOW, RULES), true);
  t.equal(needsStickyCookie({ kind: 'invalid', reason: 'forged' }, 2, NOW, RULES), true);
  const session = verifyStickyCookie(signStickyCookie(2, NOW, SESSION), NOW, SESSION);
  t.equal(needsStickyCookie(session, 2, NOW + 1e6, SESSION), false, 'session cookies are never refreshed');
});

t.test('stickySetCookie', async (t) => {
  t.equal(stickySetCookie('1.2.x', RULES, false), 'srv=1.2.x; Path=/; HttpOnly; SameSite=Lax; Max-Age=3600');
  t.equal(stickySetCookie('1.0.x', SESSION, true), 'srv=1.0.x; Path=/; HttpOnly; SameSite=Lax; Secure');
});

t.test('programmer errors throw', async (t) => {
  t.throws(() => signStickyCookie(-1, NOW, RULES), RangeError);
  t.throws(() => signStickyCookie(1024, NOW, RULES), RangeError);
  t.throws(() => signStickyCookie(1.5, NOW, RULES), RangeError);
  t.throws(() => signStickyCookie(1, -1, RULES), RangeError);
});

t.test('property: random values never verify and never throw; signed values always do', async (t) => {
  fc.assert(
    fc.property(fc.string({ maxLength: 60 }), (value) => {
      const verdict = verifyStickyCookie(value, NOW, RULES);
      return verdict.kind === 'invalid';
    }),
  );
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 1023 }), fc.integer({ min: 0, max: 2 ** 33 }), (slot, now) => {
      const verdict = verifyStickyCookie(signStickyCookie(slot, now, RULES), now, RULES);
      return verdict.kind === 'valid' && verdict.slot === slot;
    }),
  );
  t.pass('properties hold');
});
