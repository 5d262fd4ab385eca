import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { ManualClock } from '../helpers/manual-clock.js';
import { freePort, waitFor } from '../helpers/net.js';
import { startApp, tempDir } from '../admin/app-helper.js';
import type { SluiceEvent } from '../../src/observe/events.js';

// A pool with no healthy member refuses clients (no-healthy-upstream, docs/pools.md); that is the
// service's fault, not the client's, so rejectionsPer never counts it.
test('bans: refusals for no-healthy-upstream are not counted by rejectionsPer', async (t) => {
  const dir = await tempDir(t, 'sluice-bans-');
  const dead = await freePort('tcp');
  const a = await startApp(
    t,
    `bans:
  stateDir: ${dir}
  rules:
    knockers: { when: { rejectionsPer: { count: 2, window: 1m } }, ban: 1h }
  default: [knockers]
routes:
  web:
    listen: tcp://127.0.0.1:0
    upstream: [127.0.0.1:${dead}]
`,
    { clock: new ManualClock() },
  );
  const seen: SluiceEvent[] = [];
  a.app.events.subscribe((e) => seen.push(e));
  const refused = () => seen.filter((e) => e.type === 'session-rejected' && e.reason === 'no-healthy-upstream').length;
  const attempt = async () => {
    const s = net.connect({ host: '127.0.0.1', port: a.port('web') });
    s.on('error', () => {});
    t.after(() => s.destroy());
    await once(s, 'close');
  };
  await attempt(); // the dial fails and ejects the only member (its backoff never ends on this clock)
  for (let i = 0; i < 4; i++) await attempt();
  await waitFor(() => refused() === 4, 'four refusals');
  assert.equal(seen.filter((e) => e.type === 'ban-added').length, 0);
});
