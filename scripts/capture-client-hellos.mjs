// Records real ClientHellos as hex fixtures for test/protocol/tls/ (golden-byte tests).
// Usage: node scripts/capture-client-hellos.mjs [outDir]   (needs openssl and curl on PATH)
// A local TCP server on 127.0.0.1 (port 0) takes each client's first flight: it reads until the
// client has been quiet for 300 ms (a client waits for the ServerHello after its ClientHello),
// writes the bytes as hex, then closes. Nothing leaves loopback.
import net from 'node:net';
import { spawn } from 'node:child_process';
import { writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const outDir = process.argv[2] ?? 'test/protocol/tls/fixtures';
mkdirSync(outDir, { recursive: true });

function capture(argsFor) {
  return new Promise((resolve, reject) => {
    const server = net.createServer((sock) => {
      const chunks = [];
      let quiet;
      const finish = () => {
        sock.destroy();
        server.close();
        process.kill(-child.pid, 'SIGKILL'); // its own process group: Chromium's helpers end too
        resolve(Buffer.concat(chunks));
      };
      sock.on('data', (c) => {
        chunks.push(c);
        clearTimeout(quiet);
        quiet = setTimeout(finish, 300);
      });
      sock.on('error', () => {});
    });
    let child;
    server.listen(0, '127.0.0.1', () => {
      const port = server.address().port;
      const [cmd, ...args] = argsFor(port);
      child = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
      child.on('error', reject);
      setTimeout(() => reject(new Error(`${cmd}: no ClientHello within 10 s`)), 10_000).unref();
    });
  });
}

const cases = {
  'openssl-tls13-sni': (p) => ['openssl', 's_client', '-connect', `127.0.0.1:${p}`, '-servername', 'a.example.org'],
  'openssl-tls12-alpn': (p) => ['openssl', 's_client', '-connect', `127.0.0.1:${p}`, '-servername', 'B.Example.Org', '-tls1_2', '-alpn', 'h2,http/1.1'],
  'openssl-no-sni': (p) => ['openssl', 's_client', '-connect', `127.0.0.1:${p}`, '-noservername'],
  // Chromium: GREASE values, an ECH GREASE extension and a post-quantum key share (about 1.8 KB).
  chromium: (p) => ['chromium', '--headless=new', '--no-sandbox', '--disable-gpu', `--user-data-dir=/tmp/sluice-capture-${process.pid}`, `--host-resolver-rules=MAP chrome.example.org 127.0.0.1`, `https://chrome.example.org:${p}/`],
  'curl-resolve': (p) => ['curl', '-sk', '--max-time', '5', '--resolve', `web.example.org:${p}:127.0.0.1`, `https://web.example.org:${p}/`],
};
for (const [name, argsFor] of Object.entries(cases)) {
  const bytes = await capture(argsFor);
  const cmd = argsFor('PORT').join(' ');
  writeFileSync(join(outDir, `${name}.hex`), `# ${cmd}\n${bytes.toString('hex').replace(/(.{64})/g, '$1\n').trim()}\n`);
  console.log(`${name}: ${bytes.length} bytes`);
}
rmSync(`/tmp/sluice-capture-${process.pid}`, { recursive: true, force: true });
