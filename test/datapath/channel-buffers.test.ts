// Socket buffer sizes (src/datapath/socket-buffers.ts), read back from the kernel with `ss`
// (iproute2): connected channel sockets (per-session sockets toward an upstream or a local
// service) get SESSION_RCVBUF_BYTES on both datapaths unless told otherwise (0 keeps the system
// default), listeners get LISTENER_RCVBUF_BYTES / LISTENER_SNDBUF_BYTES.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { NativeDatapath } from '../../src/datapath/native/native-datapath.js';
import { jsDatapath } from '../../src/datapath/js-datapath.js';
import type { UdpDatapath } from '../../src/datapath/udp-datapath.js';
import { LISTENER_RCVBUF_BYTES, LISTENER_SNDBUF_BYTES, SESSION_RCVBUF_BYTES } from '../../src/datapath/socket-buffers.js';

const loaded = loadNativeBinding();
const skip = loaded.ok ? false : `native datapath unavailable: ${loaded.reason}`;
const rmemDefault = Number(readFileSync('/proc/sys/net/core/rmem_default', 'utf8'));
const rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
const wmemMax = Number(readFileSync('/proc/sys/net/core/wmem_max', 'utf8'));

/** The kernel doubles a SO_RCVBUF/SO_SNDBUF request for its bookkeeping and caps it at the sysctl. */
const granted = (bytes: number, max: number): number => 2 * Math.min(bytes, max);

/** `rb` and `tb` of ss's skmem for the one UDP socket matching `filter` (e.g. `dst 127.0.0.1:P`). */
function skmem(...filter: string[]): { rb: number; tb: number } {
  const out = execFileSync('ss', ['-Hnuam', ...filter], { encoding: 'utf8' });
  const rb = /\brb(\d+)/.exec(out);
  const tb = /\btb(\d+)/.exec(out);
  assert.ok(rb && tb, `ss shows the socket (${filter.join(' ')}): ${out}`);
  return { rb: Number(rb[1]), tb: Number(tb[1]) };
}

async function channelTo(t: TestContext, dp: UdpDatapath): Promise<number> {
  const peer = dgram.createSocket('udp4');
  peer.bind(0, '127.0.0.1');
  await once(peer, 'listening');
  t.after(() => peer.close());
  const port = peer.address().port;
  const ch = await dp.connect({ address: '127.0.0.1', port, family: 4 }, { onUpstreamDatagram: () => {}, onUpstreamError: () => {} });
  t.after(() => ch.close());
  return port;
}

test('native channels: SESSION_RCVBUF_BYTES by default, channelRcvbufBytes overrides it, 0 keeps the system default', { skip }, async (t) => {
  if (!loaded.ok) return;
  const dflt = new NativeDatapath(loaded.binding, loaded.layout);
  const plain = new NativeDatapath(loaded.binding, loaded.layout, { channelRcvbufBytes: 0 });
  const sized = new NativeDatapath(loaded.binding, loaded.layout, { channelRcvbufBytes: 1 << 20 });
  t.after(() => { dflt.destroy(); plain.destroy(); sized.destroy(); });
  assert.notEqual(granted(SESSION_RCVBUF_BYTES, rmemMax), rmemDefault, 'the session size differs from the system default here');
  assert.equal(skmem('dst', `127.0.0.1:${await channelTo(t, dflt)}`).rb, granted(SESSION_RCVBUF_BYTES, rmemMax));
  assert.equal(skmem('dst', `127.0.0.1:${await channelTo(t, plain)}`).rb, rmemDefault);
  assert.equal(skmem('dst', `127.0.0.1:${await channelTo(t, sized)}`).rb, granted(1 << 20, rmemMax));
});

test('js channels: SESSION_RCVBUF_BYTES', async (t) => {
  assert.equal(skmem('dst', `127.0.0.1:${await channelTo(t, jsDatapath)}`).rb, granted(SESSION_RCVBUF_BYTES, rmemMax));
});

for (const [kind, make] of [
  ['js', () => jsDatapath],
  ['native', () => (loaded.ok ? new NativeDatapath(loaded.binding, loaded.layout) : undefined)],
] as const) {
  test(`${kind} listeners: LISTENER_RCVBUF_BYTES and LISTENER_SNDBUF_BYTES`, { skip: kind === 'native' && skip }, async (t) => {
    const dp = make();
    if (dp === undefined) return;
    if (dp instanceof NativeDatapath) t.after(() => dp.destroy());
    const l = await dp.listen('127.0.0.1', 0, { onDatagram: () => {}, onSendError: () => {} });
    t.after(() => l.close());
    const { rb, tb } = skmem('src', `127.0.0.1:${l.local.port}`);
    assert.equal(rb, granted(LISTENER_RCVBUF_BYTES, rmemMax));
    assert.equal(tb, granted(LISTENER_SNDBUF_BYTES, wmemMax));
  });
}
