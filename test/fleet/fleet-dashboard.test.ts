import { test } from 'node:test';
import assert from 'node:assert/strict';
import { headlessChromium } from '../admin/browser.js';
import { echoUpstream } from '../bans/helpers.js';
import { startRedis } from '../helpers/redis.js';
import { ADMIN, gatewayNode } from './helpers.js';

test('dashboard fleet panel: both gateways of the fleet, this one marked, with its bound agent port', async (t) => {
  const context = await headlessChromium(t, 'the dashboard fleet panel', 1400);
  if (!context) return;
  const redis = await startRedis(t);
  if (!redis) return;
  const up = await echoUpstream(t);
  const a = await gatewayNode(t, redis, 'gw-a', up.port);
  await gatewayNode(t, redis, 'gw-b', up.port);
  const page = context.pages()[0] ?? (await context.newPage());
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  await page.goto(a.admin());
  await page.fill('#token', ADMIN);
  await Promise.all([page.waitForURL(`${a.admin()}/`), page.click('button[type=submit]')]);
  await page.waitForSelector('#fleet-gateways tbody tr[data-key="gw-b"]', { timeout: 10_000 });
  assert.equal(await page.isVisible('#fleet-section'), true);
  const row = async (name: string) => (await page.locator(`#fleet-gateways tbody tr[data-key="${name}"] td`).allTextContents()).map((x) => x.trim());
  assert.deepEqual((await row('gw-a')).slice(0, 4), ['gw-a (this)', 'yes', '0', '0']);
  assert.deepEqual((await row('gw-b')).slice(0, 2), ['gw-b', 'yes']);
  assert.equal((await row('gw-a'))[5], String(a.app.exposure.gateway!.tcpAddress.port));
  assert.match(await page.locator('#fleet-note').innerText(), /seen from gw-a; Redis ok/);
  assert.deepEqual(problems, []);
});
