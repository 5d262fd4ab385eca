import { execFile } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { makeDir } from '../core/make-dir.js';
import { chmod, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SluiceError } from '../core/errors.js';

/** The gateway's TLS identity and the pin agents put in `agent.fingerprint`. */
export interface GatewayCertificate {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** `sha256:` and 64 lowercase hex digits of the DER certificate's SHA-256. */
  readonly fingerprint: string;
  /** True when this start created it. */
  readonly generated: boolean;
  readonly certPath: string;
}

/** Runs the openssl tool; injected so tests can stand in for it. */
export type OpensslRunner = (args: readonly string[]) => Promise<void>;

export const systemOpenssl: OpensslRunner = (args) =>
  new Promise((resolve, reject) => {
    execFile('openssl', [...args], { timeout: 30_000 }, (err, _out, stderr) => {
      if (!err) return resolve();
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      reject(
        new SluiceError(
          'SLUICE_ERR_CONFIG_INVALID',
          missing
            ? 'cannot generate the gateway certificate: the openssl tool is not installed (install it, or set gateway.tls.cert and gateway.tls.key)'
            : `openssl failed: ${String(stderr).trim().split('\n')[0] ?? err.message}`,
          { cause: err },
        ),
      );
    });
  });

/** `sha256:<hex>` of a PEM certificate. */
export function certificateFingerprint(pem: Buffer | string): string {
  return `sha256:${new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase()}`;
}

/**
 * The configured certificate, or the one kept in `stateDir`, or a new one made there.
 *
 * Node 20 cannot create X.509 certificates, so a new one is made by the openssl tool (Debian
 * ships it; it is the library Node itself links). The key is an ECDSA P-256 key made here with
 * node:crypto and written 0600 before openssl sees it; openssl only signs the certificate
 * (`req -new -x509`, flags LibreSSL accepts too). npm alternatives were weighed and refused:
 * `selfsigned` and `@peculiar/x509` pull in about 25 packages and need a global
 * `reflect-metadata` polyfill (tsyringe).
 */
export async function loadOrCreateCertificate(
  opts: { stateDir: string; tls: { cert: string; key: string } | undefined },
  openssl: OpensslRunner = systemOpenssl,
): Promise<GatewayCertificate> {
  if (opts.tls) {
    const [cert, key] = await Promise.all([readState(opts.tls.cert), readState(opts.tls.key)]);
    if (!cert || !key) throw new SluiceError('SLUICE_ERR_CONFIG_READ', `cannot read gateway.tls cert ${opts.tls.cert} or key ${opts.tls.key}`);
    return { cert, key, fingerprint: certificateFingerprint(cert), generated: false, certPath: opts.tls.cert };
  }
  const certPath = join(opts.stateDir, 'gateway-cert.pem');
  const keyPath = join(opts.stateDir, 'gateway-key.pem');
  const [cert, key] = await Promise.all([readState(certPath), readState(keyPath)]);
  if (cert && key) return { cert, key, fingerprint: certificateFingerprint(cert), generated: false, certPath };

  await makeDir(opts.stateDir, 0o700);
  const pair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const keyPem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const tmpKey = `${keyPath}.tmp`;
  const tmpCert = `${certPath}.tmp`;
  await writeFile(tmpKey, keyPem, { mode: 0o600 });
  await chmod(tmpKey, 0o600);
  try {
    await openssl(['req', '-new', '-x509', '-key', tmpKey, '-sha256', '-days', '3650', '-subj', '/CN=sluice-gateway', '-out', tmpCert]);
    const certPem = await readFile(tmpCert);
    certificateFingerprint(certPem); // throws on garbage before it is kept
    await rename(tmpKey, keyPath);
    await rename(tmpCert, certPath);
    return { cert: certPem, key: Buffer.from(keyPem), fingerprint: certificateFingerprint(certPem), generated: true, certPath };
  } finally {
    await rm(tmpKey, { force: true });
    await rm(tmpCert, { force: true });
  }
}

async function readState(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SluiceError('SLUICE_ERR_CONFIG_READ', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'EIO'}`, { cause: err });
  }
}
