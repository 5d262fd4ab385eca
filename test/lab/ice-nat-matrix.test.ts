import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

/**
 * Proof 3 of issue 6: the NAT lab (../shared/lab/natlab.sh, network namespaces with real Linux
 * NATs). Sluice's STUN server and coturn run in `pub`; one Sluice agent runs in `host-a`
 * (controlling) and one in `host-b` (controlled), signalling through this process's stdio. For
 * all 25 NAT-type pairs: every pair connects and moves datagrams both ways; the selected pair is
 * direct (host, srflx or prflx) exactly where a direct path exists, and relayed where it cannot
 * (port-restricted ⇄ symmetric, symmetric ⇄ symmetric). Cells run one after another on one lab,
 * switched with `set-nat` (which also flushes the routers' conntrack).
 *
 * Needs root, nftables, iproute2, conntrack and coturn. Missing any: fails under CI=true,
 * otherwise skips loudly. NATLAB_SH overrides where natlab.sh is.
 */

const HERE = dirname(fileURLToPath(import.meta.url)); // dist/test/lab
const REPO = resolve(HERE, '../../..');
const NATLAB = process.env.NATLAB_SH ?? resolve(REPO, '../shared/lab/natlab.sh');
const PREFIX = `sice${process.pid}-`;
const TYPES = ['none', 'full-cone', 'restricted', 'port-restricted', 'symmetric'] as const;
type NatType = (typeof TYPES)[number];
const PUB_STUN = { address: '198.51.100.1', port: 3478 };
const PUB_TURN = { address: '198.51.100.2', port: 3478 };
const USER = 'lab';
const PASS = 'lab-secret-1';
const CELL_CONNECT_MS = 20_000;
const DATAGRAMS = 20;

/** Direct UDP works unless one side maps per destination (symmetric) and the other filters by port (lab README). */
function directPossible(a: NatType, b: NatType): boolean {
  const sym = (t: NatType) => t === 'symmetric';
  const portFilter = (t: NatType) => t === 'port-restricted' || t === 'symmetric';
  return !((sym(a) && portFilter(b)) || (sym(b) && portFilter(a)));
}

function labMissing(t: TestContext): boolean {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  if (!existsSync(NATLAB)) missing.push(`natlab.sh (${NATLAB})`);
  for (const bin of ['ip', 'nft', 'conntrack', 'turnserver']) if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) missing.push(bin);
  if (missing.length === 0) return false;
  const msg = `NAT lab unavailable (missing: ${missing.join(', ')}; apt-get install -y nftables iptables conntrack coturn): ICE NAT matrix NOT RUN`;
  if (process.env.CI === 'true') assert.fail(msg);
  console.warn(`\n*** ${msg} ***\n`);
  t.skip(msg);
  return true;
}

function lab(...args: string[]): { status: number; out: string } {
  const r = spawnSync(NATLAB, args, { env: { ...process.env, NATLAB_PREFIX: PREFIX }, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** A process inside a lab namespace, its stdout as JSON lines. */
class LabProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly lines: Record<string, unknown>[] = [];
  log = '';
  #waiters: (() => void)[] = [];

  constructor(ns: string, argv: string[], onLine?: (m: Record<string, unknown>) => void) {
    this.child = spawn(NATLAB, ['exec', ns, ...argv], { env: { ...process.env, NATLAB_PREFIX: PREFIX }, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.on('data', (d: Buffer) => (this.log += d.toString()));
    this.child.stdin.on('error', () => {});
    readline.createInterface({ input: this.child.stdout }).on('line', (line) => {
      this.log += `${line}\n`;
      let m: Record<string, unknown>;
      try {
        m = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      this.lines.push(m);
      onLine?.(m);
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  send(m: object): void {
    if (this.child.exitCode === null) this.child.stdin.write(`${JSON.stringify(m)}\n`);
  }

  find(type: string): Record<string, unknown> | undefined {
    return this.lines.find((l) => l.type === type);
  }

  async waitFor(type: string, timeoutMs: number): Promise<Record<string, unknown> | undefined> {
    const end = Date.now() + timeoutMs;
    while (!this.find(type) && Date.now() < end && this.child.exitCode === null) {
      await new Promise<void>((r) => {
        const timer = setTimeout(r, Math.max(0, end - Date.now()));
        this.#waiters.push(() => (clearTimeout(timer), r()));
      });
    }
    return this.find(type);
  }

  /** Kills by PID (ip netns exec has exec'd the program, so this is its PID) and waits for the exit. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    const late = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(late);
  }
}

interface PairEnd { type: string; address: string; port: number }
interface Selected { local: PairEnd; remote: PairEnd; relayed: boolean; rttMs?: number }
interface Cell {
  a: NatType;
  b: NatType;
  connected: boolean;
  expectedDirect: boolean;
  selectedA?: Selected;
  selectedB?: Selected;
  msA?: number;
  msB?: number;
  receivedA?: number;
  receivedB?: number;
  error?: string;
}

async function runCell(a: NatType, b: NatType): Promise<Cell> {
  const cell: Cell = { a, b, connected: false, expectedDirect: directPossible(a, b) };
  for (const [router, type] of [['nat-a', a], ['nat-b', b]] as const) {
    const r = lab('set-nat', router, type);
    if (r.status !== 0) return { ...cell, error: `set-nat ${router} ${type}: ${r.out}` };
  }
  const peerArgs = (role: string, host: string) => [
    'node', join(HERE, 'ice-lab-peer.js'),
    JSON.stringify({ role, host, stun: PUB_STUN, turn: PUB_TURN, user: USER, pass: PASS, lifetimeMs: CELL_CONNECT_MS + 15_000 }),
  ];
  // Signalling: every line one peer prints for the other is relayed as it comes (trickle).
  let A: LabProcess | undefined;
  let B: LabProcess | undefined;
  const relay = (to: () => LabProcess | undefined) => (m: Record<string, unknown>) => {
    if (m.type === 'credentials' || m.type === 'candidate' || m.type === 'end') to()?.send(m);
  };
  A = new LabProcess('host-a', peerArgs('controlling', '10.0.1.2'), relay(() => B));
  B = new LabProcess('host-b', peerArgs('controlled', '10.0.2.2'), relay(() => A));
  try {
    const [sa, sb] = await Promise.all([A.waitFor('selected', CELL_CONNECT_MS), B.waitFor('selected', CELL_CONNECT_MS)]);
    if (!sa || !sb) {
      return { ...cell, error: `not connected: A ${A.lines.filter((l) => l.type === 'state').map((l) => l.state).join('>')} / B ${B.lines.filter((l) => l.type === 'state').map((l) => l.state).join('>')}\nA log:\n${A.log}\nB log:\n${B.log}` };
    }
    cell.connected = true;
    cell.selectedA = sa.pair as Selected;
    cell.selectedB = sb.pair as Selected;
    cell.msA = sa.ms as number;
    cell.msB = sb.ms as number;
    A.send({ type: 'send', count: DATAGRAMS });
    B.send({ type: 'send', count: DATAGRAMS });
    await new Promise((r) => setTimeout(r, 300));
    A.send({ type: 'report' });
    B.send({ type: 'report' });
    const [ra, rb] = await Promise.all([A.waitFor('received', 3000), B.waitFor('received', 3000)]);
    cell.receivedA = ra?.count as number | undefined;
    cell.receivedB = rb?.count as number | undefined;
    A.send({ type: 'close' });
    B.send({ type: 'close' });
    await Promise.all([waitExit(A.child, 3000), waitExit(B.child, 3000)]);
    return cell;
  } finally {
    await Promise.all([A.stop(), B.stop()]);
  }
}

function waitExit(child: ChildProcessWithoutNullStreams, ms: number): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((r) => {
    const timer = setTimeout(r, ms);
    child.once('exit', () => (clearTimeout(timer), r()));
  });
}

const label = (s: Selected | undefined) => (s ? `${s.local.type}→${s.remote.type}` : '—');

function table(cells: Cell[]): string {
  const head = `| A \\ B | ${TYPES.join(' | ')} |\n|---|${TYPES.map(() => '---').join('|')}|`;
  const rows = TYPES.map((a) => {
    const cols = TYPES.map((b) => {
      const c = cells.find((x) => x.a === a && x.b === b);
      if (!c) return 'not run';
      if (!c.connected) return '**FAILED**';
      const kind = c.selectedA!.relayed ? 'relay' : 'direct';
      return `${kind} ${label(c.selectedA)}, ${Math.max(c.msA!, c.msB!)} ms`;
    });
    return `| ${a} | ${cols.join(' | ')} |`;
  });
  return [head, ...rows].join('\n');
}

test('ICE across all 25 NAT-type pairs in the NAT lab: direct where possible, relayed where not, always connected', { timeout: 300_000 }, async (t) => {
  if (labMissing(t)) return;
  const up = lab('up', '--nat-a', 'none', '--nat-b', 'none');
  if (up.status !== 0) {
    lab('down');
    const msg = `the NAT lab did not come up (natlab.sh up): ICE NAT matrix NOT RUN\n${up.out}`;
    if (process.env.CI === 'true') assert.fail(msg);
    console.warn(`\n*** ${msg} ***\n`);
    return t.skip(msg);
  }
  const dir = mkdtempSync(join(tmpdir(), 'sluice-lab-'));
  const pub: LabProcess[] = [];
  t.after(async () => {
    await Promise.all(pub.map((p) => p.stop()));
    lab('down');
    rmSync(dir, { recursive: true, force: true });
  });
  const stun = new LabProcess('pub', ['node', join(HERE, 'ice-lab-stun.js'), PUB_STUN.address, String(PUB_STUN.port)]);
  pub.push(stun);
  const coturn = new LabProcess('pub', [
    'turnserver', '-n', `--listening-ip=${PUB_TURN.address}`, `--relay-ip=${PUB_TURN.address}`, `--listening-port=${PUB_TURN.port}`,
    '--lt-cred-mech', `--user=${USER}:${PASS}`, '--realm=lab.test', '--fingerprint', '--no-tls', '--no-dtls', '--no-cli',
    '--no-rfc5780', '--log-file=stdout', '--simple-log', `--pidfile=${join(dir, 'turnserver.pid')}`, `--userdb=${join(dir, 'turndb')}`,
  ]);
  pub.push(coturn);
  assert.ok(await stun.waitFor('ready', 10_000), `Sluice STUN server did not start:\n${stun.log}`);
  const coturnUp = Date.now() + 10_000;
  while (!/Total General servers/.test(coturn.log) && Date.now() < coturnUp) await new Promise((r) => setTimeout(r, 50));
  assert.match(coturn.log, /Total General servers/, 'coturn did not start');

  const started = Date.now();
  const cells: Cell[] = [];
  for (const a of TYPES) for (const b of TYPES) cells.push(await runCell(a, b));
  const summary = table(cells);
  t.diagnostic(`NAT matrix (A controlling in host-a, B controlled in host-b; local→remote types at A; time to connected), ${Math.round((Date.now() - started) / 1000)} s:\n${summary}`);
  if (process.env.ICE_LAB_RESULTS) writeFileSync(process.env.ICE_LAB_RESULTS, JSON.stringify({ cells, table: summary }, null, 1));

  for (const c of cells) {
    const where = `${c.a} ⇄ ${c.b}`;
    assert.ok(c.connected, `${where}: ${c.error}`);
    assert.equal(c.selectedA!.relayed, !c.expectedDirect, `${where}: A selected ${label(c.selectedA)}`);
    assert.equal(c.selectedB!.relayed, !c.expectedDirect, `${where}: B selected ${label(c.selectedB)}`);
    if (c.expectedDirect) for (const s of [c.selectedA!, c.selectedB!]) assert.ok(['host', 'srflx', 'prflx'].includes(s.local.type) && s.remote.type !== 'relay', `${where}: ${label(s)}`);
    assert.equal(c.receivedA, DATAGRAMS, `${where}: A received ${c.receivedA} of ${DATAGRAMS}`);
    assert.equal(c.receivedB, DATAGRAMS, `${where}: B received ${c.receivedB} of ${DATAGRAMS}`);
  }
});
