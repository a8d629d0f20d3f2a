import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Test certificates made with the `openssl` CLI (as a user would, and as the
 * README shows): a CA, and server certificates for localhost / 127.0.0.1 signed by it.
 */

/** Why openssl cannot be used, or null when it can (tests skip with this message). */
export function opensslMissing(): string | null {
  const probe = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return 'the openssl CLI is not installed (.ci/run installs it: apt-get install openssl)';
  return null;
}

function openssl(args: string[], cwd: string): void {
  const result = spawnSync('openssl', args, { cwd, encoding: 'utf8', timeout: 60_000 });
  if (result.error || result.status !== 0) {
    throw new Error(`openssl ${args.join(' ')} failed (${result.status ?? result.error?.message}): ${result.stderr}`);
  }
}

/** A CA in a temp directory that can sign server certificates. */
export interface TestCa {
  readonly dir: string;
  /** Path of the CA certificate (what a client trusts: `curl --cacert`). */
  readonly caPath: string;
  /** The CA certificate, PEM. */
  readonly caPem: Buffer;
  /** Signs a new server certificate; `name` keeps files apart. */
  issue(name: string, options?: { passphrase?: string }): ServerCert;
}

/** A server certificate and its key. */
export interface ServerCert {
  readonly certPath: string;
  readonly keyPath: string;
  /** SHA-256 fingerprint of the certificate (`AA:BB:...`, as node's `getPeerX509Certificate().fingerprint256`). */
  readonly fingerprint256: string;
}

/** Creates a CA (EC P-256: fast to generate on a loaded machine). */
export function createTestCa(): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'sticky-tls-'));
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key'], dir);
  openssl(['req', '-x509', '-new', '-key', 'ca.key', '-sha256', '-days', '2', '-subj', '/CN=sticky-session-ts test CA', '-out', 'ca.pem'], dir);
  const caPath = join(dir, 'ca.pem');
  let serial = 1;
  return {
    dir,
    caPath,
    caPem: readFileSync(caPath),
    issue(name, options = {}) {
      const key = `${name}.key`;
      if (options.passphrase === undefined) {
        openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key], dir);
      } else {
        openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-aes-128-cbc', '-pass', `pass:${options.passphrase}`, '-out', key], dir);
      }
      const passIn = options.passphrase === undefined ? [] : ['-passin', `pass:${options.passphrase}`];
      openssl(['req', '-new', '-key', key, ...passIn, '-subj', `/CN=localhost`, '-out', `${name}.csr`], dir);
      writeFileSync(join(dir, `${name}.ext`), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
      openssl(
        ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', String(serial++), '-days', '2', '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.pem`],
        dir,
      );
      const certPath = join(dir, `${name}.pem`);
      return { certPath, keyPath: join(dir, key), fingerprint256: new X509Certificate(readFileSync(certPath)).fingerprint256 };
    },
  };
}
