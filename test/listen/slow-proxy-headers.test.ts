// Slow PROXY headers must not lock clients out of a TCP route that reads them (docs/security.md):
// 2,000 connections from 250 trusted loopback addresses, 8 per address, send half a v1 header and
// stall (replaced at once when closed), against a route with 256 pending-header slots, while
// clients send their header and a request: >= 99 % of the clients get their echo within 1 s.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { encodeProxyV1 } from '../../src/protocol/proxy-protocol/index.js';
import { startNode } from '../helpers/node.js';
import { tcpServer, waitFor } from '../helpers/net.js';

const LOAD_MS = 3000;
const ATTEMPT_MS = 1000;
const PAUSE_MS = 25;

const ATTACKER = `
import net from 'node:net';
const [port, addresses, perAddress, ms] = process.argv.slice(1).map(Number);
let stop = false, opened = 0;
function slow(local) {
  if (stop) return;
  opened++;
  const s = net.connect({ port, host: '127.0.0.1', localAddress: local });
  s.on('connect', () => s.write('PROXY TCP4 203.0.113.'));
  s.on('error', () => {});
  s.on('close', () => setImmediate(() => slow(local)));
}
for (let a = 0; a < addresses; a++) for (let i = 0; i < perAddress; i++) slow('127.0.0.' + (2 + a));
setInterval(() => process.stdout.write(JSON.stringify({ opened }) + '\\n'), 250).unref();
setTimeout(() => { stop = true; process.exit(0); }, ms);
`;

test('2,000 slow PROXY headers from 250 trusted addresses: >= 99 % of clients get through within 1 s', { timeout: 60_000 }, async (t) => {
  const up = await tcpServer(t, (s) => s.pipe(s).on('error', () => {}));
  const n = await startNode(
    t,
    `
routes:
  web:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${up.port}
    proxyProtocol: { accept: [127.0.0.0/8], headerTimeout: 2s }
    tcp: { maxConnections: 256, maxConnectionsPerSource: 16 }
`,
  );
  const port = n.port('web');
  const rejected = () => n.ofType('session-rejected').length;

  const tally = { ok: 0, failed: 0, slowest: 0, failures: {} as Record<string, number> };
  const attempt = async (localAddress: string) => {
    const started = performance.now();
    const s = net.connect({ port, host: '127.0.0.1', localAddress });
    s.on('error', () => {});
    try {
      await Promise.race([
        (async () => {
          await once(s, 'connect');
          s.write(Buffer.concat([encodeProxyV1({ source: { address: '198.51.100.9', port: 4000 }, destination: { address: '192.0.2.1', port: 80 } }), Buffer.from('ping')]));
          const [got] = (await once(s, 'data')) as Buffer[];
          assert.equal(got!.toString(), 'ping');
        })(),
        new Promise((_, reject) => setTimeout(() => reject(new Error('late')), ATTEMPT_MS)),
      ]);
      tally.ok++;
      tally.slowest = Math.max(tally.slowest, performance.now() - started);
    } catch (err) {
      tally.failed++;
      const why = `${(err as Error).message} from ${localAddress === '127.0.0.1' ? 'a known sender' : 'a new address'}`;
      tally.failures[why] = (tally.failures[why] ?? 0) + 1;
    } finally {
      s.destroy();
    }
  };
  // 127.0.0.1 has sent a good header before the attack (the load balancer that was always there).
  await attempt('127.0.0.1');
  assert.equal(tally.ok, 1);
  tally.ok = 0;
  const child = spawn(process.execPath, ['--input-type=module', '-e', ATTACKER, String(port), '250', '8', '60000'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill());
  let opened = 0;
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    for (const line of d.split('\n')) if (line.trim()) opened = (JSON.parse(line) as { opened: number }).opened;
  });
  // Steady state: 256 headers pending, the other 1,744 connections refused (and held).
  await waitFor(() => rejected() >= 1700, 'the attacker holds 2,000 connections', 20_000);

  let fresh = 0;
  const end = performance.now() + LOAD_MS;
  await Promise.all(
    // two loops from the address that sent good headers before, four from never-seen addresses
    ['127.0.0.1', '127.0.0.1', '', '', '', ''].map(async (fixed) => {
      while (performance.now() < end) {
        const i = fresh++;
        await attempt(fixed || `127.2.${Math.floor(i / 250) & 0xff}.${(i % 250) + 1}`);
        await new Promise((r) => setTimeout(r, PAUSE_MS));
      }
    }),
  );
  // The attack lasted the whole run: refusals kept coming until the end.
  const before = rejected();
  await waitFor(() => rejected() > before, 'the attack still running', 5000);
  t.diagnostic(JSON.stringify({ ...tally, attackerConnections: opened, rejected: rejected() }));
  child.kill();
  const total = tally.ok + tally.failed;
  assert.ok(opened >= 2000, `the attacker opened ${opened} connections`);
  assert.ok(total >= 50, `${total} attempts`);
  assert.ok(tally.ok / total >= 0.99, `${tally.ok}/${total} within ${ATTEMPT_MS} ms; failures ${JSON.stringify(tally.failures)}`);
});
