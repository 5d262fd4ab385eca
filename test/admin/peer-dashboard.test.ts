import { test } from 'node:test';
import assert from 'node:assert/strict';
import { udpClient, waitFor } from '../helpers/net.js';
import { peerApps } from './peer-app.js';
import { headlessChromium } from './browser.js';


test('dashboard Peers panel: the link goes from absent to connected (direct) without a reload; the connect listener counts', async (t) => {
  const context = await headlessChromium(t, 'the dashboard Peers panel', 1400);
  if (!context) return;
  const { s, agent } = await peerApps(t, '    home-wg: { peer: home, service: wg, listen: udp://127.0.0.1:0 }');
  const page = context.pages()[0] ?? (await context.newPage());
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  await page.goto(s.admin());
  await page.waitForSelector('#conn.on', { timeout: 10_000 });
  await page.waitForSelector('#connects tbody tr[data-key="home-wg"]', { timeout: 10_000 });
  assert.equal(await page.isVisible('#peers-section'), true);
  const connectCells = async () => (await page.locator('#connects tbody tr[data-key="home-wg"] td').allTextContents()).map((x) => x.trim());
  const before = await connectCells();
  assert.equal(before[0], 'home-wg');
  assert.equal(before[3], 'home / wg');
  assert.equal(before[4], 'auto');
  assert.equal(before[5], 'idle');
  assert.equal(await page.locator('#peers tbody tr[data-key]').count(), 0, 'no link before traffic');

  const navigations: string[] = [];
  page.on('framenavigated', (f) => navigations.push(f.url()));
  const c = await udpClient(t);
  const listen = agent.connectRoutes[0]!.local.port;
  const pump = setInterval(() => c.send(listen, 'x'), 100);
  t.after(() => clearInterval(pump));
  const link = () => agent.peers.links.get('home');
  await waitFor(() => link()?.path === 'direct', 'direct path', 10_000);

  await page.waitForFunction(
    () => (globalThis as any).document.querySelector('#peers tbody tr[data-key="home"] td:nth-child(4)')?.textContent === 'direct',
    undefined,
    { timeout: 10_000 },
  );
  const row = (await page.locator('#peers tbody tr[data-key="home"] td').allTextContents()).map((x) => x.trim());
  assert.deepEqual(row.slice(0, 4), ['home', 'controlled', 'connected', 'direct']);
  assert.equal(row[4], `${Math.round(link()!.timeToDirectMs!)} ms`);
  assert.match(row[6]!, /^[1-9]\d* ok, /, 'a pair succeeded');
  assert.match(row[7]!, / <-> /);
  assert.equal(row[8], '–', 'no reason when direct');
  await page.waitForFunction(
    () => /^[1-9]\d* \/ [1-9]\d* \/ [1-9]\d*$/.test((globalThis as any).document.querySelector('#connects tbody tr[data-key="home-wg"] td:nth-child(8)')?.textContent ?? ''),
    undefined,
    { timeout: 10_000 },
  );
  const after = await connectCells();
  assert.equal(after[5], 'connected (direct)');
  assert.equal(after[6], '1');
  assert.deepEqual(navigations, [], 'updated live, without a reload');
  assert.deepEqual(problems, [], 'no script errors and nothing blocked by the CSP');
});
