import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { nativeOnly } from './stream-datapaths.js';
import type { StreamListener } from '../../src/datapath/stream-datapath.js';

// The native stream datapath hands each accepted connection to its listener's handler, found by
// the listener's engine id (the last one is kept between accepts). Engine ids are taken again
// once freed, so a listener opened after another closed may get its id: its connections must
// reach its own handler, never the closed one's.
const { skip, datapath: nativeDp } = nativeOnly();

test('native stream datapath: each connection reaches its own listener, also after one closed and another opened', { skip }, async (t) => {
  const dp = nativeDp();
  const got: string[] = [];
  let arrived: (() => void) | undefined;
  const open = (name: string) =>
    dp.listen('127.0.0.1', 0, (conn) => {
      got.push(name);
      conn.destroy();
      arrived?.();
    });
  const connectTo = async (l: StreamListener) => {
    const before = got.length;
    const accepted = new Promise<void>((resolve) => (arrived = resolve));
    const c = net.connect(l.local.port, '127.0.0.1');
    c.on('error', () => {});
    await once(c, 'connect');
    await accepted;
    c.destroy();
    assert.equal(got.length, before + 1);
    return got[before];
  };
  const a = await open('a');
  const b = await open('b');
  t.after(() => Promise.all([a.close(), b.close()]));
  assert.equal(await connectTo(a), 'a');
  assert.equal(await connectTo(b), 'b');
  assert.equal(await connectTo(a), 'a');
  await a.close(); // a's id is free again: the next listener takes it (the engine's free ids are a stack)
  const c = await open('c');
  t.after(() => c.close());
  assert.equal(await connectTo(c), 'c');
  assert.equal(await connectTo(b), 'b');
  assert.equal(await connectTo(c), 'c');
  assert.deepEqual(got, ['a', 'b', 'a', 'c', 'b', 'c']);
});
