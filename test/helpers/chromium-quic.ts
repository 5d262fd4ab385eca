import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { QuicInitialReader } from '../../src/protocol/quic/initial-reader.js';
import { startPeer } from './peers.js';

/**
 * Headless Chromium forced to QUIC for `https://name:port/`, `name` resolved to 127.0.0.1; ended
 * (with its helper processes) and its profile removed when the test ends.
 */
export async function browseOverQuic(t: TestContext, name: string, port: number) {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-quic-chromium-'));
  const child = startPeer(t, 'chromium', [
    '--headless=new', '--no-sandbox', '--disable-gpu', `--user-data-dir=${dir}`,
    '--enable-quic', `--origin-to-force-quic-on=${name}:${port}`, `--host-resolver-rules=MAP ${name} 127.0.0.1`,
    `https://${name}:${port}/`,
  ]);
  t.after(async () => {
    stopGroup(child.pid);
    await rm(dir, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 }); // its helpers may still be writing as they die
  });
  return child;
}

/** Ends a detached peer with its helper processes (its process group). */
export function stopGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

/** The server name in a client's Initial datagrams, read back; `incomplete` or `error <reason>` otherwise. */
export function nameInInitials(datagrams: readonly Buffer[]): string | undefined {
  const r = new QuicInitialReader();
  for (const d of datagrams) {
    const step = r.push(d);
    if (step.kind === 'done') return step.quic.hello.serverName;
    if (step.kind === 'error') return `error ${step.reason}`;
  }
  return 'incomplete';
}
