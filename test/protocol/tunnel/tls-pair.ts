import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import tls from 'node:tls';
import type { TestContext } from 'node:test';
import { TUNNEL_ALPN } from '../../../src/protocol/tunnel/index.js';

/**
 * A throwaway self-signed EC certificate from the openssl CLI (Node 20 cannot make X.509
 * certificates). Undefined when openssl is not installed, so the caller can skip.
 */
export function makeTestCertificate(): { key: Buffer; cert: Buffer } | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-tunnel-cert-'));
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=sluice-test-gateway', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
  } catch {
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface TlsPair {
  readonly agent: tls.TLSSocket;
  readonly gateway: tls.TLSSocket;
}

/**
 * A TLS 1.3 server on 127.0.0.1:0 and one client connected to it, both ends established. The
 * client pins the certificate by passing it as its only CA. Everything is destroyed in t.after.
 */
export async function tlsPair(t: TestContext, creds: { key: Buffer; cert: Buffer }, opts: { minVersion?: tls.SecureVersion; maxVersion?: tls.SecureVersion } = {}): Promise<TlsPair> {
  const server = tls.createServer({ ...creds, minVersion: opts.minVersion ?? 'TLSv1.3', maxVersion: opts.maxVersion, ALPNProtocols: [TUNNEL_ALPN] });
  const accepted = once(server, 'secureConnection') as Promise<[tls.TLSSocket]>;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const agent = tls.connect({
    host: '127.0.0.1', port, ca: creds.cert, servername: 'sluice-test-gateway', checkServerIdentity: () => undefined,
    minVersion: opts.minVersion ?? 'TLSv1.3', maxVersion: opts.maxVersion, ALPNProtocols: [TUNNEL_ALPN],
  });
  const [[gateway]] = await Promise.all([accepted, once(agent, 'secureConnect')]);
  t.after(async () => {
    agent.destroy();
    gateway.destroy();
    server.close();
    await once(server, 'close');
  });
  return { agent, gateway };
}
