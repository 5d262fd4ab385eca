import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startApp } from './app-helper.js';
import { headlessChromium } from './browser.js';
import { udpMember } from '../helpers/pool-members.js';

const TOKEN = 'dashboard-pool-token-7d2a91c4';

// The dashboard's "Pool members" table (docs/pools.md): shown for a pooled route, one row per
// member with its health, updated without a reload when a member goes down.
test('dashboard in headless Chromium: pool members with health, updated when a member goes down', async (t) => {
  const context = await headlessChromium(t, 'the dashboard pool test');
  if (!context) return;
  const a = await udpMember(t, 'a');
  const b = await udpMember(t, 'b');
  const s = await startApp(
    t,
    `
routes:
  game:
    listen: udp://127.0.0.1:0
    upstream: ["127.0.0.1:${a.port}", "127.0.0.1:${b.port}"]
    health:
      udp: { send: "text:ping", expect: "text:pong", interval: 300ms, timeout: 250ms }
accessLog: { output: off }
admin: { listen: 127.0.0.1:0, token: ${TOKEN} }
lifecycle: { drainTimeout: 1s }
`,
  );
  const page = context.pages()[0] ?? (await context.newPage());
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  await page.goto(s.admin());
  await page.fill('#token', TOKEN);
  await Promise.all([page.waitForURL(`${s.admin()}/`), page.click('button[type=submit]')]);
  const row = (port: number) => `#pool-members tbody tr[data-key="game|127.0.0.1:${port}"]`;
  await page.waitForSelector(row(b.port), { timeout: 10_000 });
  assert.equal(await page.isVisible('#pools-section'), true);
  b.close();
  await page.waitForSelector(`${row(b.port)} td.health-down`, { timeout: 10_000 });
  assert.equal(await page.textContent(`${row(a.port)} td:nth-child(4)`), 'up');
  assert.deepEqual(problems, []);
});
