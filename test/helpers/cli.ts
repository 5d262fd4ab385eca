import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { TestContext } from 'node:test';

const BIN = new URL('../../../bin/sluice', import.meta.url).pathname;

/** Runs `./bin/sluice ARGS` with `env` over this process's environment; killed when the test ends. */
export function runSluice(t: TestContext, args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = once(child, 'exit').then(([code]) => code as number);
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return { child, exited, out: () => stdout, err: () => stderr };
}
