import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LabProcess, NAT_TYPES, directPossible, labMissing as missingLab, natlab, type Json, type NatType } from './natlab.js';

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
const PREFIX = `sice${process.pid}-`;
const TYPES = NAT_TYPES;
const PUB_STUN = { address: '198.51.100.1', port: 3478 };
const PUB_TURN = { address: '198.51.100.2', port: 3478 };
const USER = 'lab';
const PASS = 'lab-secret-1';
const CELL_CONNECT_MS = 20_000;
const DATAGRAMS = 20;

function labMissing(t: TestContext): boolean {
  return missingLab(t, ['ip', 'nft', 'conntrack', 'turnserver'], 'ICE NAT matrix', 'nftables iptables conntrack coturn');
}

function lab(...args: string[]): { status: number; out: string } {
  return natlab(PREFIX, ...args);
}

/** A lab process of this file's lab, by namespace. */
const labProcess = (ns: string, argv: string[], onLine?: (m: Json) => void) => new LabProcess(ns, PREFIX, ns, argv, onLine);

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
  A = labProcess('host-a', peerArgs('controlling', '10.0.1.2'), relay(() => B));
  B = labProcess('host-b', peerArgs('controlled', '10.0.2.2'), relay(() => A));
  try {
    const [sa, sb] = await Promise.all([A.waitForType('selected', CELL_CONNECT_MS), B.waitForType('selected', CELL_CONNECT_MS)]);
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
    const [ra, rb] = await Promise.all([A.waitForType('received', 3000), B.waitForType('received', 3000)]);
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
  const stun = labProcess('pub', ['node', join(HERE, 'ice-lab-stun.js'), PUB_STUN.address, String(PUB_STUN.port)]);
  pub.push(stun);
  const coturn = labProcess('pub', [
    'turnserver', '-n', `--listening-ip=${PUB_TURN.address}`, `--relay-ip=${PUB_TURN.address}`, `--listening-port=${PUB_TURN.port}`,
    '--lt-cred-mech', `--user=${USER}:${PASS}`, '--realm=lab.test', '--fingerprint', '--no-tls', '--no-dtls', '--no-cli',
    '--no-rfc5780', '--log-file=stdout', '--simple-log', `--pidfile=${join(dir, 'turnserver.pid')}`, `--userdb=${join(dir, 'turndb')}`,
  ]);
  pub.push(coturn);
  assert.ok(await stun.waitForType('ready', 10_000), `Sluice STUN server did not start:\n${stun.log}`);
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
