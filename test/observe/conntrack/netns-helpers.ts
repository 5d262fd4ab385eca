import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { Sysctl } from '../../../src/observe/conntrack/index.js';

/** Runs a command; resolves stdout, rejects with stderr in the message. */
export function run(file: string, args: readonly string[], timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')}: ${err.message} ${stderr}`.trim(), { cause: err }));
      else resolve(stdout);
    });
  });
}

/**
 * Why the namespace test cannot run here, or undefined when it can. The caller fails on CI and
 * skips loudly elsewhere.
 */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (process.platform !== 'linux') return 'network namespaces and conntrack need Linux';
  if (process.getuid?.() !== 0) return 'needs root (ip netns, conntrack -E, sysctl)';
  for (const [file, args] of [
    ['ip', ['-V']],
    ['conntrack', ['--version']],
    ['nft', ['--version']],
    ['sysctl', ['--version']],
    ['ping', ['-V']],
  ] as const) {
    try {
      await run(file, args);
    } catch (err) {
      return `${file} is not usable (apt-get install -y conntrack iproute2 nftables procps iputils-ping): ${(err as Error).message}`;
    }
  }
  return undefined;
}

/** `sysctl` inside a namespace: conntrack parameters are per network namespace. */
export function netnsSysctl(ns: string): Sysctl {
  return {
    read: async (name) => (await run('ip', ['netns', 'exec', ns, 'sysctl', '-n', name])).trim(),
    write: async (name, value) => void (await run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `${name}=${value}`])),
  };
}

/**
 * Two namespaces joined by a veth pair: `a` (10.77.0.1, fd77::1) is the one whose conntrack is
 * watched, `b` (10.77.0.2, fd77::2) its peer. Conntrack only tracks in a namespace where
 * something needs it, so `a` gets a stateful nftables rule. Both are deleted in t.after, after
 * every process started through `exec` has been killed by its pid.
 */
export async function vethPair(t: TestContext, prefix: string) {
  const a = `${prefix}a`;
  const b = `${prefix}b`;
  const children: ChildProcess[] = [];
  const dir = await mkdtemp(join(tmpdir(), 'sluice-conntrack-'));
  t.after(async () => {
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) {
        c.kill('SIGKILL');
        await once(c, 'close').catch(() => {});
      }
    }
    for (const ns of [a, b]) await run('ip', ['netns', 'del', ns]).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  });
  await run('ip', ['netns', 'add', a]);
  await run('ip', ['netns', 'add', b]);
  const ip = (ns: string, ...args: string[]) => run('ip', ['-n', ns, ...args]);
  await ip(a, 'link', 'set', 'lo', 'up');
  await ip(b, 'link', 'set', 'lo', 'up');
  await ip(a, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1', 'netns', b);
  await ip(a, 'addr', 'add', '10.77.0.1/24', 'dev', 'v0');
  await ip(b, 'addr', 'add', '10.77.0.2/24', 'dev', 'v1');
  await ip(a, '-6', 'addr', 'add', 'fd77::1/64', 'dev', 'v0', 'nodad');
  await ip(b, '-6', 'addr', 'add', 'fd77::2/64', 'dev', 'v1', 'nodad');
  await ip(a, 'link', 'set', 'v0', 'up');
  await ip(b, 'link', 'set', 'v1', 'up');
  const rules = join(dir, 'rules.nft');
  await writeFile(rules, 'table inet sluice_test {\n  chain in { type filter hook input priority 0; ct state new counter; }\n}\n');
  await run('ip', ['netns', 'exec', a, 'nft', '-f', rules]);

  const script = join(dir, 'peer.mjs');
  await writeFile(script, PEER_SCRIPT);

  /** Starts `node peer.mjs ...args` inside `ns` (ip netns exec execs, so the pid is node's). Resolves once it printed "ready". */
  const serve = async (ns: string, ...args: string[]) => {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    let out = '';
    child.stdout!.setEncoding('utf8');
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: string) => {
        out += d;
        if (out.includes('ready')) resolve();
      });
      child.once('close', (code) => reject(new Error(`server ${args.join(' ')} exited with ${code}`)));
    });
    return child;
  };
  /** Runs `node peer.mjs ...args` inside `ns` to completion; resolves its trimmed stdout. */
  const client = async (ns: string, ...args: string[]) => (await run('ip', ['netns', 'exec', ns, process.execPath, script, ...args])).trim();
  const exec = (ns: string, file: string, ...args: string[]) => run('ip', ['netns', 'exec', ns, file, ...args]);
  return { a, b, serve, client, exec };
}

// Echo servers and clients that print how many bytes came back.
const PEER_SCRIPT = `
import net from 'node:net';
import dgram from 'node:dgram';
const [role, host, portText, sizeText] = process.argv.slice(2);
const port = Number(portText);
const size = Number(sizeText ?? 0);
const udpType = host.includes(':') ? 'udp6' : 'udp4';
setTimeout(() => { if (!role.startsWith('serve')) { console.error('peer timed out'); process.exit(2); } }, 8000).unref();
if (role === 'serve-tcp') {
  net.createServer((c) => { c.on('error', () => {}); c.pipe(c); }).listen(port, host, () => console.log('ready'));
} else if (role === 'serve-udp') {
  const s = dgram.createSocket(udpType);
  s.on('message', (m, r) => s.send(m, r.port, r.address));
  s.bind(port, host, () => console.log('ready'));
} else if (role === 'tcp') {
  let got = 0;
  const c = net.connect(port, host, () => c.end(Buffer.alloc(size, 0x61)));
  c.on('data', (d) => (got += d.length));
  c.on('close', () => console.log(got));
} else if (role === 'udp') {
  const s = dgram.createSocket(udpType);
  s.on('message', (m) => { console.log(m.length); s.close(); });
  s.send(Buffer.alloc(size, 0x62), port, host);
} else if (role === 'probe') {
  // A SYN to a closed port: the kernel answers RST, so conntrack sees NEW and DESTROY at once.
  const c = net.connect(port, host);
  c.on('error', () => console.log('refused'));
  c.on('connect', () => { console.log('open'); c.destroy(); });
} else {
  console.error('unknown role ' + role);
  process.exit(2);
}
`;
