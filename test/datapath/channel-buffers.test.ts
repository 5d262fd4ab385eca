// NativeDatapathOptions.channelRcvbufBytes: connected channel sockets get that receive buffer
// (read back from the kernel with `ss`, iproute2); without it they keep the system default.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { NativeDatapath } from '../../src/datapath/native/native-datapath.js';

const loaded = loadNativeBinding();
const skip = loaded.ok ? false : `native datapath unavailable: ${loaded.reason}`;

/** SO_RCVBUF as the kernel reports it (`rb` of ss's skmem) for the UDP socket connected to `port`. */
function rcvbuf(port: number): number {
  const out = execFileSync('ss', ['-Hnuam', 'dst', `127.0.0.1:${port}`], { encoding: 'utf8' });
  const m = /rb(\d+)/.exec(out);
  assert.ok(m, `ss shows the channel's socket: ${out}`);
  return Number(m[1]);
}

async function channelTo(t: TestContext, dp: NativeDatapath): Promise<number> {
  const peer = dgram.createSocket('udp4');
  peer.bind(0, '127.0.0.1');
  await once(peer, 'listening');
  t.after(() => peer.close());
  const port = peer.address().port;
  const ch = await dp.connect({ address: '127.0.0.1', port, family: 4 }, { onUpstreamDatagram: () => {}, onUpstreamError: () => {} });
  t.after(() => ch.close());
  return port;
}

test('native channels: channelRcvbufBytes sets their receive buffer; without it the system default stays', { skip }, async (t) => {
  if (!loaded.ok) return;
  const rmemDefault = Number(readFileSync('/proc/sys/net/core/rmem_default', 'utf8'));
  const rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
  const plain = new NativeDatapath(loaded.binding, loaded.layout);
  const sized = new NativeDatapath(loaded.binding, loaded.layout, { channelRcvbufBytes: 1 << 20 });
  t.after(() => { plain.destroy(); sized.destroy(); });
  assert.equal(rcvbuf(await channelTo(t, plain)), rmemDefault);
  // The kernel doubles the request for its bookkeeping and caps it at net.core.rmem_max.
  assert.equal(rcvbuf(await channelTo(t, sized)), 2 * Math.min(1 << 20, rmemMax));
});
