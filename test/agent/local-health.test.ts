import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { systemClock } from '../../src/core/clock.js';
import { LocalHealthCheck, type LocalHealthReport } from '../../src/agent/local-health.js';
import { sleep, waitFor } from '../helpers/net.js';

test('local check: UDP probe up at the first matching reply, down at once on ICMP unreachable, never faster than its interval', async (t) => {
  const svc = dgram.createSocket('udp4');
  let probes = 0;
  svc.on('message', (m, r) => {
    probes++;
    // Only the expected probe gets the expected answer.
    if (m.toString('hex') === 'ffffffff54') svc.send(Buffer.from('ffffffff49aa', 'hex'), r.port, r.address);
  });
  svc.bind(0, '127.0.0.1');
  await once(svc, 'listening');
  const port = svc.address().port;
  const reports: LocalHealthReport[] = [];
  const check = new LocalHealthCheck(
    { kind: 'udp', intervalMs: 100, timeoutMs: 80, rise: 2, fall: 3, sendHex: 'ffffffff54', expectHex: 'ffffffff49' },
    { host: '127.0.0.1', port },
    systemClock,
    (r) => reports.push(r),
  );
  t.after(() => check.close());
  await waitFor(() => reports.length === 1, 'first verdict');
  assert.equal(reports[0]!.up, true);
  assert.match(reports[0]!.message, /udp check passed in \d+ms/);
  const before = probes;
  const started = Date.now();
  await sleep(1000);
  const elapsed = Date.now() - started;
  assert.ok(probes - before <= Math.floor(elapsed / 100) + 1, `${probes - before} probes in ${elapsed}ms at a 100ms interval`);
  assert.equal(reports.length, 1, 'no report while nothing changes');
  svc.close();
  await waitFor(() => reports.length === 2, 'down verdict');
  assert.deepEqual(reports[1], { up: false, message: 'port unreachable (ICMP)' });
  assert.equal(check.state, 'down');
});

test('local check: TCP connect; a refused connection counts toward fall; a service that listens again needs rise passes', async (t) => {
  const net = await import('node:net');
  const server = net.createServer((s) => s.destroy());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as import('node:net').AddressInfo).port;
  const reports: LocalHealthReport[] = [];
  const check = new LocalHealthCheck({ kind: 'tcp', intervalMs: 50, timeoutMs: 40, rise: 2, fall: 2, sendHex: undefined, expectHex: undefined }, { host: '127.0.0.1', port }, systemClock, (r) => reports.push(r));
  t.after(() => check.close());
  await waitFor(() => reports.length === 1, 'up');
  assert.equal(reports[0]!.up, true);
  await new Promise((r) => server.close(r));
  await waitFor(() => reports.length === 2, 'down after two failures');
  assert.equal(reports[1]!.up, false);
  const again = net.createServer((s) => s.destroy());
  again.listen(port, '127.0.0.1');
  await once(again, 'listening');
  t.after(() => again.close());
  await waitFor(() => reports.length === 3, 'up after two passes');
  assert.equal(reports[2]!.up, true);
  assert.ok(check.checks >= 5, `checks ran: ${check.checks}`);
});
