import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import readline from 'node:readline';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';

/** What the NAT-lab tests share: where natlab.sh is, the NAT types, the skip rule, lab processes. */

const HERE = dirname(fileURLToPath(import.meta.url)); // dist/test/lab
export const NATLAB = process.env.NATLAB_SH ?? resolve(HERE, '../../..', '../shared/lab/natlab.sh');
export const NAT_TYPES = ['none', 'full-cone', 'restricted', 'port-restricted', 'symmetric'] as const;
export type NatType = (typeof NAT_TYPES)[number];

/** Direct UDP works unless one side maps per destination (symmetric) and the other filters by port (lab README). */
export function directPossible(a: NatType, b: NatType): boolean {
  const sym = (t: NatType) => t === 'symmetric';
  const portFilter = (t: NatType) => t === 'port-restricted' || t === 'symmetric';
  return !((sym(a) && portFilter(b)) || (sym(b) && portFilter(a)));
}

/**
 * True (and the test skipped loudly) when root, natlab.sh or one of `bins` is missing; under
 * CI=true that fails the test instead: nothing may skip there.
 */
export function labMissing(t: TestContext, bins: readonly string[], what: string, install: string): boolean {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  if (!existsSync(NATLAB)) missing.push(`natlab.sh (${NATLAB})`);
  for (const bin of bins) if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) missing.push(bin);
  if (missing.length === 0) return false;
  const msg = `NAT lab unavailable (missing: ${missing.join(', ')}; apt-get install -y ${install}): ${what} NOT RUN`;
  if (process.env.CI === 'true') assert.fail(msg);
  console.warn(`\n*** ${msg} ***\n`);
  t.skip(msg);
  return true;
}

/** `natlab.sh ARGS` for the lab of `prefix` (each test file has its own NATLAB_PREFIX). */
export function natlab(prefix: string, ...args: string[]): { status: number; out: string } {
  const r = spawnSync(NATLAB, args, { env: { ...process.env, NATLAB_PREFIX: prefix }, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

export type Json = Record<string, unknown>;

/** A process inside a lab namespace; its stdout as JSON lines (each stamped with `receivedAt`). */
export class LabProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly lines: Json[] = [];
  log = '';
  #waiters: (() => void)[] = [];

  constructor(
    readonly name: string,
    prefix: string,
    ns: string,
    argv: string[],
    onLine?: (m: Json) => void,
  ) {
    this.child = spawn(NATLAB, ['exec', ns, ...argv], { env: { ...process.env, NATLAB_PREFIX: prefix }, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.on('data', (d: Buffer) => (this.log += d.toString()));
    this.child.stdin.on('error', () => {});
    readline.createInterface({ input: this.child.stdout }).on('line', (line) => {
      this.log += `${line}\n`;
      let m: Json;
      try {
        m = JSON.parse(line) as Json;
      } catch {
        return;
      }
      m.receivedAt = Date.now();
      this.lines.push(m);
      onLine?.(m);
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  send(m: object): void {
    if (this.child.exitCode === null) this.child.stdin.write(`${JSON.stringify(m)}\n`);
  }

  find(type: string): Json | undefined {
    return this.lines.find((l) => l.type === type);
  }

  /** The first line of `type`, or undefined after `timeoutMs` or when the process exits. */
  async waitForType(type: string, timeoutMs: number): Promise<Json | undefined> {
    return this.waitFor((l) => l.type === type, type, timeoutMs).catch(() => undefined);
  }

  /** The first line (after index `from`) that matches; throws with the process's log after `timeoutMs`. */
  async waitFor(match: (m: Json) => boolean, what: string, timeoutMs: number, from = 0): Promise<Json> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.slice(from).find(match);
      if (hit) return hit;
      if (Date.now() >= end || this.child.exitCode !== null) {
        throw new Error(`${this.name}: timed out waiting for ${what} (exit ${this.child.exitCode})\n${this.log.split('\n').slice(-40).join('\n')}`);
      }
      await new Promise<void>((r) => {
        const timer = setTimeout(r, Math.max(0, end - Date.now()));
        this.#waiters.push(() => (clearTimeout(timer), r()));
      });
    }
  }

  /** Sends `m` and waits for the reply line of type `type`. */
  async ask(m: object, type: string, timeoutMs = 5000): Promise<Json> {
    const from = this.lines.length;
    this.send(m);
    return this.waitFor((l) => l.type === type, type, timeoutMs, from);
  }

  /** Kills by PID (natlab.sh exec has exec'd ip netns exec, which exec'd the program) and waits for the exit. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    const late = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(late);
  }
}
