import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startApp, tempDir } from './app-helper.js';
import { headlessChromium } from './browser.js';
import { echoUpstream } from '../bans/helpers.js';
import { decision, fakeLapi } from '../admission/crowdsec/fake-lapi.js';

const TOKEN = 'dashboard-crowdsec-token-93b2e1';

test('dashboard in headless Chromium: the Bans panel lists CrowdSec decisions after the list\'s own bans, one page, and says how many there are', async (t) => {
  const context = await headlessChromium(t, 'the dashboard CrowdSec bans test');
  if (!context) return;
  const up = await echoUpstream(t);
  const dir = await tempDir(t, 'sluice-dash-cs-');
  const lapi = await fakeLapi(t);
  const many = [decision('Range', '10.9.0.0/16', { scenario: 'manual', duration: undefined }), ...Array.from({ length: 149 }, (_, i) => decision('Ip', `10.0.0.${i}`))];
  lapi.answer((r) => ({ body: r.startup === 'true' ? { new: many } : { new: null, deleted: null } }));
  const s = await startApp(
    t,
    `
crowdsec: { url: "${lapi.url}", apiKey: good-key, interval: 1s }
bans: { stateDir: ${dir} }
routes:
  ssh:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${up.port}
    acl: { crowdsec: true }
accessLog: { output: off }
admin: { listen: 127.0.0.1:0, token: ${TOKEN} }
lifecycle: { drainTimeout: 1s }
`,
  );
  assert.equal(typeof s.app.bans!.add({ target: '192.0.2.0/24', source: 'api', reason: 'by hand', durationMs: 3600_000 }), 'object');

  const page = context.pages()[0] ?? (await context.newPage());
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  await page.goto(s.admin());
  await page.fill('#token', TOKEN);
  await Promise.all([page.waitForURL(`${s.admin()}/`), page.click('button[type=submit]')]);

  const row = (key: string) => page.locator(`#bans tbody tr[data-key="${key}"]`);
  await row('10.9.0.0/16').waitFor({ timeout: 10_000 });
  const cells = async (key: string) => (await row(key).locator('td').allTextContents()).map((x) => x.trim());
  assert.deepEqual(await cells('10.9.0.0/16'), ['10.9.0.0/16', 'crowdsec', 'when deleted', 'manual (origin cscli)']);
  assert.deepEqual((await cells('192.0.2.0/24')).filter((_, i) => i !== 2), ['192.0.2.0/24', 'api', 'by hand']);
  const keys = await page.locator('#bans tbody tr').evaluateAll((trs) => trs.map((tr) => (tr as unknown as { dataset: { key: string } }).dataset.key));
  assert.equal(keys.length, 100, 'one page');
  assert.deepEqual(keys.slice(0, 3), ['192.0.2.0/24', '10.9.0.0/16', '10.0.0.0'], "the list's own bans first, then CrowdSec's in the order received");
  assert.equal(await page.textContent('#bans-note'), '(100 of 151 shown)');
  assert.deepEqual(problems, []);
});
