import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadTlsMaterial, type TlsSection } from '../../../src/shared/config/tls-material.js';
import { createTestCa, opensslMissing } from '../../helpers/certs.js';

const noOpenssl = opensslMissing();

t.test('loadTlsMaterial', { skip: noOpenssl ?? false }, async (t) => {
  const ca = createTestCa();
  const good = ca.issue('good');
  const other = ca.issue('other');
  const locked = ca.issue('locked', { passphrase: 'open sesame' });
  const garbage = join(ca.dir, 'garbage.pem');
  writeFileSync(garbage, '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n');
  const missing = join(ca.dir, 'missing.pem');

  const section = (fields: Partial<TlsSection>): TlsSection => ({ cert: good.certPath, key: good.keyPath, http2: false, ...fields });

  t.test('valid material', async (t) => {
    const plain = loadTlsMaterial(section({}));
    t.ok(plain.ok);
    if (plain.ok) {
      t.equal(plain.material.fingerprint256, good.fingerprint256, 'the leaf fingerprint');
      t.notOk('ca' in plain.material.options, 'no ca when none is configured');
    }
    const withCa = loadTlsMaterial(section({ ca: ca.caPath }));
    t.ok(withCa.ok && withCa.material.options.ca !== undefined, 'ca is passed on');
    const withPassphrase = loadTlsMaterial(section({ cert: locked.certPath, key: locked.keyPath, passphrase: 'open sesame' }));
    t.ok(withPassphrase.ok && withPassphrase.material.options.passphrase === 'open sesame', 'an encrypted key with its passphrase');
  });

  const invalid: Array<{ name: string; input: Partial<TlsSection>; message: RegExp }> = [
    { name: 'cert missing', input: { cert: missing }, message: /^tls\.cert: cannot read .*missing\.pem \(ENOENT\)$/ },
    { name: 'key missing', input: { key: missing }, message: /^tls\.key: cannot read .*\(ENOENT\)$/ },
    { name: 'ca missing', input: { ca: missing }, message: /^tls\.ca: cannot read .*\(ENOENT\)$/ },
    { name: 'cert is a directory', input: { cert: ca.dir }, message: /^tls\.cert: cannot read .*\(EISDIR\)$/ },
    { name: 'cert not PEM', input: { cert: garbage }, message: /^tls\.cert: .* is not a PEM certificate/ },
    { name: 'cert is a key', input: { cert: good.keyPath }, message: /^tls\.cert: .* is not a PEM certificate/ },
    { name: 'ca not PEM', input: { ca: garbage }, message: /^tls\.ca: .* is not a PEM certificate/ },
    { name: 'key not a key', input: { key: garbage }, message: /^tls\.key: .* is not a usable private key/ },
    { name: 'key is a certificate', input: { key: good.certPath }, message: /^tls\.key: .* is not a usable private key/ },
    { name: 'key of another certificate', input: { key: other.keyPath }, message: /^tls\.key: .* does not load with tls\.cert .*good\.pem/ },
    { name: 'encrypted key without passphrase', input: { cert: locked.certPath, key: locked.keyPath }, message: /^tls\.key: .*encrypted keys need tls\.passphrase\)$/ },
    { name: 'encrypted key, wrong passphrase', input: { cert: locked.certPath, key: locked.keyPath, passphrase: 'nope' }, message: /^tls\.key: .*wrong tls\.passphrase\?\)$/ },
  ];
  for (const c of invalid) {
    const result = loadTlsMaterial(section(c.input));
    t.notOk(result.ok, `${c.name}: refused`);
    if (!result.ok) {
      t.match(result.message, c.message, `${c.name}: names the path`);
      t.notMatch(result.message, /\n/, `${c.name}: one line`);
    }
  }
});
