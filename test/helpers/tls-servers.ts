import net from 'node:net';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { freePort, waitFor } from './net.js';
import { startPeer, tempDir } from './peers.js';

/** Runs a command with a bounded time; resolves with its stdout+stderr whatever the exit status. */
export function run(cmd: string, args: string[], timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (_err, stdout, stderr) => resolve(`${stdout}\n${stderr}`));
    child.stdin?.end();
  });
}

/** An `openssl s_server -WWW` with a self-signed certificate for CN=`cn`, serving `id.txt` = `body`. */
export async function tlsServer(t: TestContext, cn: string, body: string): Promise<number> {
  const dir = await tempDir(t, 'sluice-sni-');
  const [key, cert] = [join(dir, 'key.pem'), join(dir, 'cert.pem')];
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${cn}`]);
  await writeFile(join(dir, 'id.txt'), body);
  const port = await freePort();
  const server = startPeer(t, 'sh', ['-c', `cd '${dir}' && exec openssl s_server -accept 127.0.0.1:${port} -cert cert.pem -key key.pem -WWW -quiet`]);
  // Ready once it accepts a TCP connection.
  await waitFor(() => server.exitCode === null, 's_server running');
  for (let i = 0; ; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (ok) break;
    if (i > 100) throw new Error(`s_server for ${cn} did not start: ${server.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return port;
}

/** The certificate subject CN that `openssl s_client` printed, or undefined when the handshake did not get that far. */
export const subjectSeen = (out: string) => /subject=CN ?= ?([^\s/]+)/.exec(out)?.[1];

/**
 * A TCP relay to `port` that sends the client's bytes on one at a time, each in its own segment
 * (a ClientHello dribbled byte by byte); returns its port.
 */
export async function dribbler(t: TestContext, port: number): Promise<number> {
  const server = net.createServer((inbound) => {
    const out = net.connect({ port, host: '127.0.0.1', noDelay: true });
    inbound.on('error', () => {});
    out.on('error', () => {});
    out.pipe(inbound);
    let queue = Promise.resolve();
    inbound.on('data', (chunk: Buffer) => {
      for (const byte of chunk) {
        queue = queue.then(() => new Promise<void>((r) => (out.write(Buffer.from([byte])), setTimeout(r, 1))));
      }
    });
    inbound.on('end', () => void queue.then(() => out.end()));
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  t.after(() => server.close());
  return (server.address() as net.AddressInfo).port;
}
