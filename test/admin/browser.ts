import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { BrowserContext } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/**
 * Debian's Chromium, headless, with a throwaway profile removed after the browser exited (it writes
 * into the profile while closing). Without Chromium: fails under CI=true, otherwise skips loudly
 * and returns undefined.
 */
export async function headlessChromium(t: TestContext, what: string, width = 1280): Promise<BrowserContext | undefined> {
  if (!existsSync(CHROMIUM)) {
    const why = `${CHROMIUM} not found (Debian package chromium)`;
    if (process.env.CI === 'true') assert.fail(`${what} cannot run: ${why}`);
    console.warn(`SKIPPED ${what} in a real browser: ${why}`);
    t.skip(why);
    return undefined;
  }
  const { chromium } = await import('playwright-core');
  const dir = await mkdtemp(join(tmpdir(), 'sluice-browser-'));
  let context: BrowserContext | undefined;
  t.after(async () => {
    await context?.close();
    if (process.env.KEEP_TMP !== '1') await rm(dir, { recursive: true, force: true });
  });
  context = await chromium.launchPersistentContext(join(dir, 'profile'), { executablePath: CHROMIUM, args: ARGS, headless: true, viewport: { width, height: 1000 } });
  return context;
}
