import type { TestContext } from 'node:test';
import dgram from 'node:dgram';
import { once } from 'node:events';
import type { NativeDatapath } from '../../src/datapath/native/native-datapath.js';
import { FORWARD_COUNTERS, nativeKeys } from '../../src/datapath/native/native-keys.js';

/** Datagrams the batch forwarded over every entry ever installed in `dp` (ids are not reused in a test). */
export function forwarded(dp: NativeDatapath): number {
  const c = nativeKeys(dp)?.fwd?.counters;
  if (!c) return 0;
  let n = 0;
  for (let i = 0; i < c.length; i += FORWARD_COUNTERS) n += c[i]!;
  return n;
}

/** A dgram socket on 127.0.0.1 that keeps what it receives in `inbox`, closed after the test. */
export async function inboxSocket(t: TestContext) {
  const s = dgram.createSocket('udp4');
  const inbox: Buffer[] = [];
  s.on('message', (m) => inbox.push(m));
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  t.after(() => s.close());
  return { s, inbox, port: s.address().port, send: (buf: Buffer, port: number) => s.send(buf, port, '127.0.0.1') };
}
