import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

/**
 * Whether an external test peer is installed. Outside CI a missing peer skips the test loudly;
 * under CI=true nothing may skip, so it fails (.ci/run installs every peer).
 */
export function havePeer(t: TestContext, command: string, pkg: string): boolean {
  const found = spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
  if (found) return true;
  const message = `${command} is not installed (Debian package ${pkg}); .ci/run installs it`;
  if (process.env.CI === 'true') throw new Error(`${message}: under CI nothing may skip`);
  console.warn(`\n*** SKIPPED: ${message} ***\n`);
  t.skip(message);
  return false;
}

/** Whether this process may create network namespaces (root with iproute2); same CI rule as havePeer. */
export function haveRootNetns(t: TestContext): boolean {
  const ok = process.getuid?.() === 0 && spawnSync('sh', ['-c', 'command -v ip && ip netns list']).status === 0;
  if (ok) return true;
  const message = 'needs root and iproute2 (ip netns) for network namespaces';
  if (process.env.CI === 'true') throw new Error(`${message}: under CI nothing may skip`);
  console.warn(`\n*** SKIPPED: ${message} ***\n`);
  t.skip(message);
  return false;
}

export async function tempDir(t: TestContext, prefix = 'sluice-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Starts a peer in the foreground in its own process group; the group (the peer and any workers
 * it forked, as nginx does) is killed by its PID when the test ends.
 */
export function startPeer(t: TestContext, command: string, args: string[]): ChildProcess & { output: () => string } {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  t.after(() => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  });
  return Object.assign(child, { output: () => out });
}
