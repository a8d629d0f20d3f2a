import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import type { Config } from './schema.js';

/** The `tls` config section (paths already resolved against the config file). */
export type TlsSection = NonNullable<Config['tls']>;

/** TLS material read from disk and proven to load, ready for `tls.createServer` / `setSecureContext`. */
export interface TlsMaterial {
  readonly options: SecureContextOptions;
  /** SHA-256 fingerprint of the leaf certificate (`AA:BB:...`), for logs. */
  readonly fingerprint256: string;
  /** The leaf certificate's expiry (`validTo`), for logs. */
  readonly validTo: string;
}

/** Material, or one line naming the config path at fault (`tls.key: ...`). */
export type TlsMaterialResult = { readonly ok: true; readonly material: TlsMaterial } | { readonly ok: false; readonly message: string };

function readPem(field: 'cert' | 'key' | 'ca', path: string): Buffer | string {
  try {
    return readFileSync(path);
  } catch (error) {
    return `tls.${field}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`;
  }
}

/**
 * Reads `tls.cert`, `tls.key` and `tls.ca` and checks that they make a secure
 * context (certificate parses, key decrypts with the passphrase, key matches
 * certificate). Used by the config loader at start (so a typo is exit 2, not a
 * crash-looping worker) and by the workers on start and on every reload (so a
 * half-written file on SIGHUP keeps the old context). Throws nothing.
 */
export function loadTlsMaterial(section: TlsSection): TlsMaterialResult {
  const cert = readPem('cert', section.cert);
  if (typeof cert === 'string') return { ok: false, message: cert };
  const key = readPem('key', section.key);
  if (typeof key === 'string') return { ok: false, message: key };
  const ca = section.ca === undefined ? undefined : readPem('ca', section.ca);
  if (typeof ca === 'string') return { ok: false, message: ca };

  let leaf: X509Certificate;
  try {
    // X509Certificate reads the first certificate of a PEM bundle: the leaf.
    leaf = new X509Certificate(cert);
  } catch (error) {
    return { ok: false, message: `tls.cert: ${section.cert} is not a PEM certificate (${(error as Error).message})` };
  }
  try {
    createPrivateKey(section.passphrase === undefined ? { key } : { key, passphrase: section.passphrase });
  } catch (error) {
    const hint = section.passphrase === undefined ? 'encrypted keys need tls.passphrase' : 'wrong tls.passphrase?';
    return { ok: false, message: `tls.key: ${section.key} is not a usable private key (${(error as Error).message}; ${hint})` };
  }
  if (ca !== undefined) {
    try {
      new X509Certificate(ca);
    } catch (error) {
      return { ok: false, message: `tls.ca: ${section.ca ?? ''} is not a PEM certificate (${(error as Error).message})` };
    }
  }
  const options: SecureContextOptions = {
    cert,
    key,
    ...(ca === undefined ? {} : { ca }),
    ...(section.passphrase === undefined ? {} : { passphrase: section.passphrase }),
  };
  try {
    // What the server will do with them; OpenSSL checks that key and certificate pair up.
    createSecureContext(options);
  } catch (error) {
    return { ok: false, message: `tls.key: ${section.key} does not load with tls.cert ${section.cert} (${(error as Error).message})` };
  }
  return { ok: true, material: { options, fingerprint256: leaf.fingerprint256, validTo: leaf.validTo } };
}
