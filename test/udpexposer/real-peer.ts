import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * The real udpexposer 0.3.0: $UDPEXPOSER_BIN, else ../shared/peers/udpexposer beside the
 * repository. Missing, it skips loudly; under CI=true it fails instead (nothing may skip there).
 */
export function udpexposerBinary(t: TestContext): string | undefined {
  const path = process.env.UDPEXPOSER_BIN ?? fileURLToPath(new URL('../../../../shared/peers/udpexposer', import.meta.url));
  if (existsSync(path)) return path;
  const message = `the real udpexposer is not at ${path} (set UDPEXPOSER_BIN)`;
  if (process.env.CI === 'true') throw new Error(`${message}: under CI nothing may skip`);
  console.warn(`\n*** SKIPPED: ${message} ***\n`);
  t.skip(message);
  return undefined;
}

/** Runs the real udpexposer with `args` until the test ends; `out()` is what it printed so far. */
export function runRealUdpexposer(t: TestContext, bin: string, args: string[]) {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout.on('data', (d) => (text += d));
  child.stderr.on('data', (d) => (text += d));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, out: () => text };
}
