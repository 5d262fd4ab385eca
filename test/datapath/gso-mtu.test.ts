// UDP GSO past the path MTU: the kernel refuses the whole UDP_SEGMENT send; the datapath must
// resend those datagrams one at a time (the kernel fragments them) and stop offloading that size
// on that socket, while smaller sizes keep GSO. Runs in its own network namespace whose loopback
// has an MTU of 1500; needs root and iproute2 (skipped otherwise).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';

const exec = promisify(execFile);
const loaded = loadNativeBinding();

const script = (bindingUrl: string, datapathUrl: string) => `
import dgram from 'node:dgram';
import { once } from 'node:events';
import { loadNativeBinding } from '${bindingUrl}';
import { NativeDatapath } from '${datapathUrl}';
const l = loadNativeBinding();
const dp = new NativeDatapath(l.binding, l.layout, { gso: true });
const errors = [];
const lis = await dp.listen('127.0.0.1', 0, { onDatagram() {}, onSendError: (e) => errors.push(e.code) });
const c = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
const got = [];
c.on('message', (m) => got.push(m.length));
c.bind(0, '127.0.0.1');
await once(c, 'listening');
const burst = (size) => { for (let i = 0; i < 10; i++) lis.send(Buffer.alloc(size, i), c.address().port, '127.0.0.1'); };
const settle = () => new Promise((r) => setTimeout(r, 300));
burst(3000); await settle(); // over the MTU: GSO refused, resent one by one
burst(3000); await settle(); // that size is no longer offloaded on this socket
burst(1000); await settle(); // under the MTU: GSO as usual
console.log(JSON.stringify({ got, errors }));
await lis.close(); c.close(); dp.destroy();
`;

test('native datapath: a GSO run over the path MTU is resent datagram by datagram, and only that size stops using GSO', async (t) => {
  if (!loaded.ok) return t.skip(`native datapath unavailable: ${loaded.reason}`);
  if (process.getuid?.() !== 0) return t.skip('needs root for a network namespace');
  const ns = `sluice-gso-${process.pid}`;
  try {
    await exec('ip', ['netns', 'add', ns]);
  } catch (err) {
    return t.skip(`no network namespaces here: ${(err as Error).message}`);
  }
  t.after(() => exec('ip', ['netns', 'del', ns]).catch(() => {}));
  await exec('ip', ['-n', ns, 'link', 'set', 'lo', 'mtu', '1500', 'up']);
  const dir = mkdtempSync(join(tmpdir(), 'sluice-gso-'));
  const file = join(dir, 'probe.mjs');
  writeFileSync(file, script(new URL('../../src/datapath/native/binding.js', import.meta.url).href, new URL('../../src/datapath/native/native-datapath.js', import.meta.url).href));
  const { stdout } = await exec('ip', ['netns', 'exec', ns, process.execPath, file], { timeout: 20_000 });
  const { got, errors } = JSON.parse(stdout.trim().split('\n').pop()!) as { got: number[]; errors: string[] };
  assert.deepEqual(errors, []);
  assert.deepEqual(got, [...Array(20).fill(3000), ...Array(10).fill(1000)]);
});
