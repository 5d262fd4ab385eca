import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';

/**
 * Runs Sluice (`sluice run`) and small peers inside ../shared/lab/natlab.sh namespaces. Every lab
 * has its own NATLAB_PREFIX; processes are started by this file and killed by PID; `down` runs at
 * the end whatever happened. Not root, or no lab: fail under CI=true, otherwise skip loudly.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const NATLAB = resolve(ROOT, '../shared/lab/natlab.sh');
export const MAIN = join(ROOT, 'dist/src/main.js');
export const PUB_IP = '198.51.100.1';

export function labAvailable(t: TestContext): boolean {
  const why = !existsSync(NATLAB)
    ? `${NATLAB} not found`
    : process.getuid?.() !== 0
      ? 'not root'
      : spawnSync('sh', ['-c', 'command -v nft && command -v conntrack && command -v ip']).status !== 0
        ? 'nftables, conntrack or iproute2 missing (apt-get install nftables conntrack iproute2)'
        : undefined;
  if (!why) return true;
  const msg = `NAT lab unavailable (${why}): expose lab tests NOT RUN`;
  if (process.env.CI === 'true') assert.fail(msg);
  console.warn(`\n*** ${msg} ***\n`);
  t.skip(msg);
  return false;
}

export class Lab {
  readonly dir = mkdtempSync(join(tmpdir(), 'sluice-lab-'));
  readonly #procs = new Set<ChildProcess>();

  constructor(readonly prefix: string) {}

  natlab(...args: string[]): string {
    const r = spawnSync('bash', [NATLAB, ...args], { env: { ...process.env, NATLAB_PREFIX: this.prefix }, encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`natlab ${args.join(' ')} failed: ${r.stderr || r.stdout}`);
    return r.stdout;
  }

  up(natA: string, natB: string): void {
    this.natlab('up', '--nat-a', natA, '--nat-b', natB, '--udp-timeout', '5', '--udp-stream-timeout', '10');
  }

  /** `conntrack -F` in a namespace of this lab (e.g. nat-a: every mapping of that NAT is gone). */
  flush(ns: string): void {
    const r = spawnSync('ip', ['netns', 'exec', `${this.prefix}${ns}`, 'conntrack', '-F'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`conntrack -F in ${ns}: ${r.stderr}`);
  }

  file(name: string, text: string): string {
    const p = join(this.dir, name);
    writeFileSync(p, text);
    return p;
  }

  /** Starts `cmd` in namespace `ns`; its output lines are kept (JSON lines parsed when they are JSON). */
  start(ns: string, cmd: string[]): LabProcess {
    const child = spawn('ip', ['netns', 'exec', `${this.prefix}${ns}`, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#procs.add(child);
    child.on('exit', () => this.#procs.delete(child));
    return new LabProcess(child);
  }

  /** Kills what this lab started (by PID), tears the namespaces down, removes the temp dir. */
  async down(): Promise<void> {
    for (const p of this.#procs) p.kill('SIGKILL');
    try {
      this.natlab('down');
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

export class LabProcess {
  readonly lines: string[] = [];
  readonly json: Record<string, unknown>[] = [];
  readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcess) {
    const take = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) {
        if (!line.trim()) continue;
        this.lines.push(line);
        try {
          this.json.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          /* plain text */
        }
      }
    };
    child.stdout!.on('data', take);
    child.stderr!.on('data', take);
    this.exited = new Promise((r) => child.once('exit', (code) => r(code)));
  }

  /** Waits for a JSON line that satisfies `match`. */
  async waitJson(match: (j: Record<string, unknown>) => boolean, what: string, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.json.find(match);
      if (hit) return hit;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; output:\n${this.lines.slice(-30).join('\n')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(t);
  }
}

/** UDP + TCP echo service (the exposed service), for `node -e`. Prints {"ready":true}. */
export const ECHO_SERVICE = `
const dgram = require('node:dgram'); const net = require('node:net');
const port = Number(process.argv[1]);
const u = dgram.createSocket('udp4'); u.on('message', (m, r) => u.send(m, r.port, r.address)); u.bind(port, '127.0.0.1');
net.createServer({ allowHalfOpen: true }, (s) => { s.on('error', () => {}); s.pipe(s); }).listen(port, '127.0.0.1', () => console.log(JSON.stringify({ ready: true })));
`;

/**
 * The public client (host-b): UDP datagrams with sequence numbers at a fixed gap, and a TCP echo
 * with half-close. Prints one JSON line with what came back and when. For \`node -e\`.
 */
export const CLIENT = `
const dgram = require('node:dgram'); const net = require('node:net');
const [host, udpPort, tcpPort, count, gapMs] = process.argv.slice(1); const n = Number(count);
const sent = []; const got = new Map();
const s = dgram.createSocket('udp4');
s.on('message', (m) => { const i = Number(m.toString().split(':')[1]); if (!got.has(i)) got.set(i, Date.now()); });
s.bind(0, () => {
  let i = 0;
  const tick = () => {
    if (i >= n) return setTimeout(done, 1500);
    sent[i] = Date.now(); s.send(Buffer.from('seq:' + i + ':' + 'x'.repeat(64)), Number(udpPort), host); i++;
    setTimeout(tick, Number(gapMs));
  };
  console.log(JSON.stringify({ started: Date.now() }));
  tick();
});
let tcp = null;
if (Number(tcpPort) > 0) {
  const c = net.connect({ host, port: Number(tcpPort), allowHalfOpen: true });
  const chunks = []; c.on('data', (d) => chunks.push(d)); c.on('error', (e) => (tcp = 'error ' + e.message));
  c.on('connect', () => c.end('tcp echo through the exposure'));
  c.on('end', () => { tcp = Buffer.concat(chunks).toString(); c.destroy(); });
}
function done() {
  s.close();
  const lost = []; for (let k = 0; k < n; k++) if (!got.has(k)) lost.push(k);
  console.log(JSON.stringify({ result: true, sent: n, received: got.size, lost, sentAt: sent, tcp }));
  process.exit(0);
}
`;

/** Forged keepalives from host-b to the gateway's UDP port: the agent's key id, a bad tag. */
export const FORGER = `
const dgram = require('node:dgram');
const [host, port, keyId, count] = process.argv.slice(1);
const s = dgram.createSocket('udp4');
s.bind(0, async () => {
  for (let i = 0; i < Number(count); i++) {
    const b = Buffer.alloc(36); b[0] = 0x0d; b.writeUInt32BE(Number(keyId) >>> 0, 2); b.writeUIntBE(2 ** 40 + i, 10, 6);
    s.send(b, Number(port), host);
    await new Promise((r) => setTimeout(r, 10));
  }
  s.close(); console.log(JSON.stringify({ forged: Number(count) }));
});
`;
