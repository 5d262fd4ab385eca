import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { havePeer, tempDir } from '../helpers/peers.js';
import { assertRelays, routesConfig, startProcess } from './support/relay-check.js';

// deploy/sluice.service checked by systemd itself (Debian package systemd: systemd-analyze
// verify and its offline security review). verify insists that ExecStart's program exists, so
// the copy under test points /usr/local/bin/sluice at this checkout's bin/sluice; nothing else
// changes. Each check takes well under a second.
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const UNIT = join(root, 'deploy', 'sluice.service');
const DROPINS = join(root, 'deploy', 'sluice.service.d');

async function unitCopy(t: TestContext, dropins: string[] = [], edit: (text: string) => string = (s) => s): Promise<string> {
  const dir = await tempDir(t, 'sluice-unit-');
  const text = readFileSync(UNIT, 'utf8').replaceAll('/usr/local/bin/sluice', join(root, 'bin', 'sluice'));
  writeFileSync(join(dir, 'sluice.service'), edit(text));
  if (dropins.length > 0) mkdirSync(join(dir, 'sluice.service.d'));
  for (const d of dropins) copyFileSync(join(DROPINS, `${d}.conf.example`), join(dir, 'sluice.service.d', `${d}.conf`));
  return join(dir, 'sluice.service');
}

function analyze(args: string[]): { code: number; out: string } {
  const r = spawnSync('systemd-analyze', args, { encoding: 'utf8', timeout: 30_000, env: { ...process.env, SYSTEMD_COLORS: '0' } });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** Capabilities the unit may keep, as the offline security review reports them (✗ = kept). */
function keptCapabilities(out: string): string[] {
  return [...out.matchAll(/✗ CapabilityBoundingSet=~(CAP_[A-Z_]+)\s/g)].map((m) => m[1]!).sort();
}

test('systemd unit: systemd-analyze verify accepts it; a broken copy is refused', async (t) => {
  if (!havePeer(t, 'systemd-analyze', 'systemd')) return;
  const ok = analyze(['verify', await unitCopy(t)]);
  assert.equal(ok.code, 0, ok.out);
  assert.equal(ok.out.trim(), '', 'no warnings');
  const broken = analyze(['verify', await unitCopy(t, [], (s) => s.replace('ExecStart=', 'ExecStrat='))]);
  assert.notEqual(broken.code, 0, 'verify does fail a unit without ExecStart');
});

test('systemd unit: hardened (no new privileges, only CAP_NET_BIND_SERVICE, state directory, reload by SIGHUP, restart on failure)', async (t) => {
  if (!havePeer(t, 'systemd-analyze', 'systemd')) return;
  const text = readFileSync(UNIT, 'utf8');
  for (const line of [
    'NoNewPrivileges=yes',
    'AmbientCapabilities=CAP_NET_BIND_SERVICE',
    'CapabilityBoundingSet=CAP_NET_BIND_SERVICE',
    'StateDirectory=sluice',
    'ExecReload=/bin/kill -HUP $MAINPID',
    'Restart=on-failure',
    'DynamicUser=yes',
  ]) {
    assert.ok(text.split('\n').includes(line), `the unit has ${line}`);
  }
  const review = analyze(['security', '--offline=yes', '--threshold=20', await unitCopy(t)]);
  assert.equal(review.code, 0, `exposure above 2.0 (threshold 20 is 2.0 on systemd's 0-100 scale):\n${review.out}`);
  assert.deepEqual(keptCapabilities(review.out), [], 'CAP_NET_BIND_SERVICE is not even scored; every other capability is dropped');
  assert.match(review.out, /✓ NoNewPrivileges=/);
});

test('systemd unit: the conntrack drop-in adds CAP_NET_ADMIN only; the netns drop-in adds CAP_SYS_ADMIN and the mount and net namespaces', async (t) => {
  if (!havePeer(t, 'systemd-analyze', 'systemd')) return;
  const conntrack = await unitCopy(t, ['conntrack']);
  assert.equal(analyze(['verify', conntrack]).code, 0);
  const c = analyze(['security', '--offline=yes', conntrack]);
  assert.deepEqual(keptCapabilities(c.out), ['CAP_NET_ADMIN']);
  assert.match(c.out, /✓ RestrictNamespaces=~net/);

  const netns = await unitCopy(t, ['netns']);
  assert.equal(analyze(['verify', netns]).code, 0);
  const n = analyze(['security', '--offline=yes', netns]);
  assert.deepEqual(keptCapabilities(n.out), ['CAP_NET_ADMIN', 'CAP_SYS_ADMIN']);
  assert.match(n.out, /✗ RestrictNamespaces=~net/);
  assert.match(n.out, /✗ RestrictNamespaces=~mnt/);
  assert.match(n.out, /✓ RestrictNamespaces=~user/);
});

/** Every system call of the groups systemd knows, expanded (`systemd-analyze syscall-filter`). */
function syscallGroups(): Map<string, Set<string>> {
  const raw = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of analyze(['syscall-filter']).out.split('\n')) {
    const word = line.trim();
    if (word === '' || word.startsWith('#')) continue;
    if (line.startsWith('@')) raw.set(word, (current = []));
    else current?.push(word);
  }
  const expand = (group: string, seen: Set<string>): Set<string> => {
    const out = new Set<string>();
    for (const item of raw.get(group) ?? []) {
      if (!item.startsWith('@')) out.add(item);
      else if (!seen.has(item)) for (const x of expand(item, seen.add(item))) out.add(x);
    }
    return out;
  };
  return new Map([...raw.keys()].map((g) => [g, expand(g, new Set([g]))]));
}

/** The unit's SystemCallFilter= lines in order: the first one allows, `~` removes, later ones add. */
function allowedSyscalls(unit: string): Set<string> {
  const groups = syscallGroups();
  const allowed = new Set<string>();
  for (const m of unit.matchAll(/^SystemCallFilter=(~?)(.*)$/gm)) {
    const names = m[2]!.trim().split(/\s+/).flatMap((n) => (n.startsWith('@') ? [...(groups.get(n) ?? [])] : [n]));
    for (const n of names) {
      if (m[1] === '~') allowed.delete(n);
      else allowed.add(n);
    }
  }
  return allowed;
}

test('systemd unit: every system call and socket family Sluice uses while relaying UDP (native datapath) and TCP with the admin API and an access log is inside its SystemCallFilter and RestrictAddressFamilies', { timeout: 120_000 }, async (t) => {
  if (!havePeer(t, 'systemd-analyze', 'systemd') || !havePeer(t, 'strace', 'strace')) return;
  const allowed = allowedSyscalls(readFileSync(UNIT, 'utf8'));
  assert.ok(allowed.has('recvmmsg') && !allowed.has('setuid') && !allowed.has('setrlimit'), 'the filter is read as systemd reads it');
  const dir = await tempDir(t, 'sluice-strace-');
  const routes = await routesConfig(t);
  const config = join(dir, 'sluice.yaml');
  writeFileSync(config, `${routes.yaml}accessLog: { output: ${join(dir, 'access.log')} }\n`);
  const trace = join(dir, 'trace.txt');
  const p = startProcess(t, 'strace', ['-f', '-qq', '-o', trace, process.execPath, join(root, 'bin', 'sluice'), 'run', '--config', config]);
  // strace -o FILE blocks fatal signals: the signals go to Sluice itself, strace ends with it.
  const sluicePid = await tracee(p.child.pid!);
  t.after(() => {
    try {
      process.kill(sluicePid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  });
  assert.equal(await assertRelays(t, routes, 30_000), 'native');
  process.kill(sluicePid, 'SIGTERM');
  assert.equal(await p.exited, 0, p.output());
  const used = new Set([...readFileSync(trace, 'utf8').matchAll(/^\d+ +([a-z0-9_]+)\(/gm)].map((m) => m[1]!));
  assert.ok(used.has('recvmmsg') && used.has('accept4'), 'the trace saw the data paths');
  assert.deepEqual([...used].filter((s) => !allowed.has(s)).sort(), []);
  const families = new Set([...readFileSync(trace, 'utf8').matchAll(/ socket\((AF_[A-Z0-9]+),/g)].map((m) => m[1]!));
  const allowedFamilies = /^RestrictAddressFamilies=(.*)$/m.exec(readFileSync(UNIT, 'utf8'))![1]!.split(/\s+/);
  assert.ok(families.has('AF_INET'));
  assert.deepEqual([...families].filter((f) => !allowedFamilies.includes(f)), [], 'every socket family is in RestrictAddressFamilies');
});

/**
 * The process strace started, once it runs node (strace also forks short-lived probes of its
 * own at start, which carry strace's command line).
 */
async function tracee(stracePid: number): Promise<number> {
  for (let i = 0; i < 400; i++) {
    const children = readFileSync(`/proc/${stracePid}/task/${stracePid}/children`, 'utf8').trim().split(' ').filter(Boolean);
    for (const pid of children) {
      const cmdline = (() => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        } catch {
          return '';
        }
      })();
      if (cmdline.split('\0')[0] === process.execPath) return Number(pid);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('strace did not start Sluice');
}
