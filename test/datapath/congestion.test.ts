import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { congestionChoice, readKernelCongestion, type KernelCongestion, type CongestionChoice } from '../../src/datapath/congestion.js';
import { isSluiceError } from '../../src/core/errors.js';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { NativeStreamDatapath } from '../../src/datapath/native/native-stream-datapath.js';
import { streamBindingOf } from '../../src/datapath/native/stream-binding.js';
import { selectStreamDatapath } from '../../src/datapath/native/select-stream.js';
import type { StreamConn } from '../../src/datapath/stream-datapath.js';
import { nativeOnly } from './stream-datapaths.js';
import { congestionOfSockets as socketsOf } from '../helpers/tcp-congestion.js';

const kernel = (over: Partial<KernelCongestion> = {}): KernelCongestion => ({
  default: 'bbr',
  available: ['reno', 'bbr', 'cubic'],
  allowed: ['reno', 'bbr', 'cubic'],
  privileged: false,
  ...over,
});
const invalid = (pattern: RegExp) => (err: unknown) => isSluiceError(err, 'SLUICE_ERR_CONFIG_INVALID') && pattern.test((err as Error).message);

test('congestion auto: local sockets leave a pacing default (bbr) for cubic, else reno; nothing when the default does not pace', () => {
  assert.deepEqual(congestionChoice('auto', kernel()), { local: 'cubic', all: '' });
  assert.deepEqual(congestionChoice('auto', kernel({ default: 'bbr2' })), { local: 'cubic', all: '' });
  assert.deepEqual(congestionChoice('auto', kernel({ available: ['reno', 'bbr'] })), { local: 'reno', all: '' });
  // cubic not allowed to an unprivileged process: reno, which every kernel allows
  assert.deepEqual(congestionChoice('auto', kernel({ allowed: ['reno', 'bbr'] })), { local: 'reno', all: '' });
  assert.deepEqual(congestionChoice('auto', kernel({ allowed: ['reno', 'bbr'], privileged: true })), { local: 'cubic', all: '' });
  assert.deepEqual(congestionChoice('auto', kernel({ default: 'cubic' })), { local: '', all: '' });
  assert.deepEqual(congestionChoice('auto', undefined), { local: '', all: '' });
});

test('congestion system sets nothing; a name is set on every socket when this kernel and process may use it', () => {
  assert.deepEqual(congestionChoice('system', kernel()), { local: '', all: '' });
  assert.deepEqual(congestionChoice('cubic', kernel()), { local: '', all: 'cubic' });
  assert.deepEqual(congestionChoice('bbr', kernel({ default: 'cubic' })), { local: '', all: 'bbr' });
  assert.throws(() => congestionChoice('vegas', kernel()), invalid(/congestion: "vegas" is not offered by this kernel \(net\.ipv4\.tcp_available_congestion_control: reno bbr cubic\)/));
  assert.throws(() => congestionChoice('cubic', kernel({ allowed: ['reno', 'bbr'] })), invalid(/"cubic" is not in net\.ipv4\.tcp_allowed_congestion_control \(reno bbr\) and Sluice runs without CAP_NET_ADMIN/));
  assert.deepEqual(congestionChoice('cubic', kernel({ allowed: ['reno', 'bbr'], privileged: true })), { local: '', all: 'cubic' });
  assert.throws(() => congestionChoice('cubic', undefined), invalid(/does not show its TCP congestion controls/));
});

test('congestion: the kernel read from /proc, CAP_NET_ADMIN from CapEff; undefined where /proc has none', () => {
  const files: Record<string, string> = {
    '/proc/sys/net/ipv4/tcp_congestion_control': 'bbr\n',
    '/proc/sys/net/ipv4/tcp_available_congestion_control': 'reno bbr cubic\n',
    '/proc/sys/net/ipv4/tcp_allowed_congestion_control': 'reno cubic\n',
    '/proc/self/status': 'Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t0000000000001000\nCapBnd:\t000001ffffffffff\n',
  };
  const read = (p: string) => {
    if (files[p] === undefined) throw Object.assign(new Error(`ENOENT ${p}`), { code: 'ENOENT' });
    return files[p];
  };
  assert.deepEqual(readKernelCongestion(read), { default: 'bbr', available: ['reno', 'bbr', 'cubic'], allowed: ['reno', 'cubic'], privileged: true });
  files['/proc/self/status'] = 'CapEff:\t0000000000000000\n';
  assert.equal(readKernelCongestion(read)?.privileged, false);
  delete files['/proc/sys/net/ipv4/tcp_congestion_control'];
  assert.equal(readKernelCongestion(read), undefined);
});

test('congestion: a name needs the native stream datapath; auto on the js one is no error', () => {
  const unavailable = () => ({ ok: false as const, reason: 'not built here' });
  assert.throws(() => selectStreamDatapath('js', { congestion: { local: '', all: 'cubic' } }), invalid(/congestion: "cubic" needs the native TCP stream datapath \(datapath: js\)/));
  assert.throws(() => selectStreamDatapath('auto', { load: unavailable, congestion: { local: '', all: 'cubic' } }), invalid(/needs the native TCP stream datapath \(not available here: not built here\)/));
  assert.equal(selectStreamDatapath('auto', { load: unavailable, congestion: { local: 'cubic', all: '' } }).datapath.kind, 'js');
});

const { skip } = nativeOnly();

test('congestion on the native stream datapath: set before listen and connect, as ss shows it', { skip }, async (t) => {
  const k = readKernelCongestion();
  assert.ok(k, 'Linux shows its congestion controls in /proc');
  // An algorithm other than the kernel's default, so that the check can fail.
  const other = ['reno', 'cubic'].find((n) => n !== k.default && k.available.includes(n));
  assert.ok(other, `reno or cubic besides the default ${k.default}`);
  const loaded = loadNativeBinding();
  assert.ok(loaded.ok);
  const binding = streamBindingOf(loaded.binding);
  assert.ok(typeof binding !== 'string', binding as string);

  const check = async (choice: CongestionChoice, listenHost: string, dialTo: string, want: { accepted: string; dialed: string }) => {
    const dp = new NativeStreamDatapath(binding, choice);
    const accepted: StreamConn[] = [];
    let arrived: (() => void) | undefined;
    const listener = await dp.listen(listenHost, 0, (conn) => {
      accepted.push(conn);
      arrived?.();
    });
    // The far ends are Node's (the kernel's default): the test dials the listener, and the
    // datapath dials a Node server.
    const server = net.createServer();
    const far: net.Socket[] = [];
    server.on('connection', (s) => far.push(s));
    server.listen(0, dialTo);
    await once(server, 'listening');
    const serverPort = (server.address() as net.AddressInfo).port;
    const came = new Promise<void>((resolve) => (arrived = resolve));
    const client = net.connect(listener.local.port, listenHost);
    await once(client, 'connect');
    await came;
    const dialed = await new Promise<StreamConn>((resolve, reject) =>
      dp.dial({ address: dialTo, port: serverPort, family: net.isIP(dialTo) as 4 | 6 }, 5000, (err, conn) => (err ? reject(err) : resolve(conn!))),
    );
    try {
      const atListener = socketsOf(listener.local.port, k.available);
      const atServer = socketsOf(serverPort, k.available);
      assert.equal(atListener.get(`${listener.local.port}>${client.localPort}`), want.accepted, `accepted on ${listenHost}`);
      assert.equal(atListener.get(`${client.localPort}>${listener.local.port}`), k.default, "the test's client: the kernel's default");
      const dialedLine = [...atServer].find(([ends]) => ends.endsWith(`>${serverPort}`));
      assert.equal(dialedLine?.[1], want.dialed, `dialed to ${dialTo}`);
    } finally {
      client.destroy();
      for (const s of far) s.destroy();
      for (const c of accepted) c.destroy();
      dialed.destroy();
      server.close();
      await listener.close();
    }
  };
  // local: sockets whose peer is on this host, over IPv4 and IPv6
  await check({ local: other, all: '' }, '127.0.0.1', '127.0.0.1', { accepted: other, dialed: other });
  await check({ local: other, all: '' }, '::1', '::1', { accepted: other, dialed: other });
  // all: every socket; none: the kernel's default on both
  await check({ local: '', all: other }, '127.0.0.1', '127.0.0.1', { accepted: other, dialed: other });
  await check({ local: '', all: '' }, '127.0.0.1', '127.0.0.1', { accepted: k.default, dialed: k.default });
});

test('congestion on the native stream datapath: a listener with an algorithm the kernel refuses is a clear error', { skip }, async () => {
  const loaded = loadNativeBinding();
  assert.ok(loaded.ok);
  const binding = streamBindingOf(loaded.binding);
  assert.ok(typeof binding !== 'string');
  // Not a registered algorithm: setsockopt fails with ENOENT before bind.
  const dp = new NativeStreamDatapath(binding, { local: '', all: 'nosuchcc' });
  await assert.rejects(dp.listen('127.0.0.1', 0, () => {}), (err: Error & { code?: string; syscall?: string }) => err.code === 'ENOENT' && /TCP_CONGESTION/.test(`${err.syscall} ${err.message}`));
});
