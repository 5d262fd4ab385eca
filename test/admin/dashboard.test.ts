import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { join } from 'node:path';
import { tcpConnect, tcpServer, udpClient, udpEcho } from '../helpers/net.js';
import { startApp, tempDir } from './app-helper.js';
import { headlessChromium } from './browser.js';

const TOKEN = 'dashboard-test-token-5c1e0b7a';
// Callbacks below run in the page: the project compiles without DOM types, so `document` is reached
// as `(globalThis as any).document` there (Playwright sends the function's source, not its closure).

test('dashboard in headless Chromium: login, live session counters update without reload, denials, chart', async (t) => {
  const context = await headlessChromium(t, 'the dashboard test');
  if (!context) return;
  const echo = await udpEcho(t);
  const up = await tcpServer(t);
  const s = await startApp(
    t,
    `
routes:
  game:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${echo.port}
  walled:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${up.port}
    acl: { deny: [127.0.0.0/8] }
accessLog: { output: off }
admin: { listen: 127.0.0.1:0, token: ${TOKEN} }
lifecycle: { drainTimeout: 1s }
`,
  );

  const page = context.pages()[0] ?? (await context.newPage());
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });

  // Not logged in: the dashboard sends us to the login form.
  await page.goto(s.admin());
  assert.equal(new URL(page.url()).pathname, '/login');
  await page.fill('#token', TOKEN);
  await Promise.all([page.waitForURL(`${s.admin()}/`), page.click('button[type=submit]')]);
  const cookies = await context.cookies();
  const cookie = cookies.find((c) => c.name === 'sluice_admin')!;
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  assert.equal(await page.evaluate(() => (globalThis as any).document.cookie), '', 'the script cannot read the cookie');
  await page.waitForSelector('#conn.on', { timeout: 10_000 });
  await page.waitForSelector('#routes tbody tr[data-key="game"]');

  // Traffic: a UDP client sending a datagram every 150 ms, and one client the ACL refuses.
  const c = await udpClient(t);
  const gamePort = s.port('game');
  const pump = setInterval(() => c.send(gamePort, 'dashboard-bytes!'), 150);
  t.after(() => clearInterval(pump));
  const denied = await tcpConnect(t, s.port('walled'));
  await once(denied, 'end');

  const row = page.locator('#sessions tbody tr[data-key]').first();
  await row.waitFor({ timeout: 10_000 });
  const cells = async () => (await row.locator('td').allTextContents()).map((x) => x.trim());
  const first = await cells();
  assert.equal(first[1], 'game');
  assert.equal(first[2], 'udp');
  assert.equal(first[3], `127.0.0.1:${c.port}`);
  assert.equal(first[4], `127.0.0.1:${echo.port}`);
  const bytesBefore = Number(first[7]);
  const navigations: string[] = [];
  page.on('framenavigated', (f) => navigations.push(f.url()));
  await page.waitForFunction((before) => Number((globalThis as any).document.querySelector('#sessions tbody tr[data-key] td.bytes-from')?.textContent) > before + 32, bytesBefore, { timeout: 10_000 });
  const later = await cells();
  assert.ok(Number(later[7]) > bytesBefore, `bytes from client went from ${bytesBefore} to ${later[7]}`);
  assert.ok(Number(later[8]) > 0, 'bytes to client counted');
  assert.deepEqual(navigations, [], 'updated live, without a reload');

  await page.waitForSelector('#denials tbody td.reason', { timeout: 10_000 });
  const denial = (await page.locator('#denials tbody tr').first().locator('td').allTextContents()).map((x) => x.trim());
  assert.equal(denial[1], 'walled');
  assert.equal(denial[2], `127.0.0.1:${denied.localPort}`);
  assert.equal(denial[3], 'acl-cidr');
  assert.equal(await page.textContent('#total-active'), '1');
  // The bans panel: a ban added through the list shows up without a reload (polled every 5 s).
  assert.equal(typeof s.app.bans!.add({ target: '192.0.2.0/24', source: 'api', reason: 'dashboard test', durationMs: 3600_000 }), 'object');
  const banRow = page.locator('#bans tbody tr[data-key="192.0.2.0/24"]');
  await banRow.waitFor({ timeout: 10_000 });
  assert.deepEqual((await banRow.locator('td').allTextContents()).map((x) => x.trim()).filter((_, i) => i !== 2), ['192.0.2.0/24', 'api', 'dashboard test']);
  // Sources (/api/sources, polled every 5 s): 127.0.0.1 with its UDP session and its refusal.
  const source = page.locator('#sources tbody tr[data-key="127.0.0.1"]');
  await page.waitForFunction(() => (globalThis as any).document.querySelector('#sources tbody tr[data-key="127.0.0.1"] td:nth-child(5)')?.textContent === '1', undefined, { timeout: 12_000 });
  const src = (await source.locator('td').allTextContents()).map((x) => x.trim());
  assert.deepEqual([src[1], src[2], src[4], src[6]], ['1', '1', '1', '–'], `sources row: ${src.join(' | ')}`);
  // The chart has a rate and, after a few ticks, its area in the "from clients" blue.
  await page.waitForFunction(() => Number((globalThis as any).document.getElementById('chart').dataset.points) >= 3, undefined, { timeout: 10_000 });
  assert.match((await page.textContent('#rate-from')) ?? '', /^\d+(\.\d+)? (B|KiB)\/s$/);
  const coloured = await page.evaluate(() => {
    const canvas = (globalThis as any).document.getElementById('chart');
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data as Uint8ClampedArray;
    let n = 0;
    for (let i = 0; i < data.length; i += 4) if (data[i + 2]! - data[i]! > 40 && data[i + 1]! > 50) n++;
    return n;
  });
  const shot = join(await tempDir(t, 'sluice-dashboard-shot-'), 'dashboard.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`dashboard screenshot: ${shot}${process.env.KEEP_TMP === '1' ? '' : ' (removed after the test; KEEP_TMP=1 keeps it)'}`);
  assert.ok(coloured > 20, `the chart drew its line (${coloured} blue pixels)`);

  assert.deepEqual(problems, [], 'no script errors and nothing blocked by the CSP');
});
