import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { SluiceError } from '../../src/core/errors.js';
import { waitFor } from '../helpers/net.js';
import { EP, pair } from './mux-pair.js';

test('a stream carries bytes both ways and forwards each FIN separately', async () => {
  const { accepted, open, gm, am } = await pair(64 * 1024);
  const g = await open();
  const a = accepted[0]!;
  g.end('from the gateway');
  const chunks: Buffer[] = [];
  a.on('data', (c: Buffer) => chunks.push(c));
  await once(a, 'end');
  assert.equal(Buffer.concat(chunks).toString(), 'from the gateway');
  a.end('and back');
  const back: Buffer[] = [];
  g.on('data', (c: Buffer) => back.push(c));
  await once(g, 'end');
  assert.equal(Buffer.concat(back).toString(), 'and back');
  await waitFor(() => gm.size === 0 && am.size === 0, 'both ends forget the finished stream');
});

test('a sender never has more than the window in flight; credit returns as the reader consumes', async () => {
  const window = 32 * 1024;
  const { accepted, open } = await pair(window);
  const g = await open();
  const a = accepted[0]!;
  const total = 1024 * 1024;
  let written = 0;
  const write = () => {
    while (written < total) {
      written += 4096;
      if (!g.write(Buffer.alloc(4096, 1))) return void g.once('drain', write);
    }
    g.end();
  };
  write();
  await new Promise((r) => setTimeout(r, 50));
  // Nobody reads: the receiver holds at most its window.
  assert.ok(a.readableLength <= window, `buffered ${a.readableLength} > window ${window}`);
  assert.ok(g.bytesWritten <= window, `sent ${g.bytesWritten} before any credit came back`);
  let got = 0;
  a.on('data', (c: Buffer) => (got += c.length));
  await once(a, 'end');
  assert.equal(got, total);
});

test('a stalled stream does not stop another on the same channel', async () => {
  const window = 16 * 1024;
  const { accepted, open } = await pair(window);
  const stalled = await open();
  const s2 = await open();
  stalled.write(Buffer.alloc(window * 4)); // three windows wait for credit that never comes
  const [, peer2] = accepted;
  s2.end(Buffer.alloc(200_000, 2));
  let got = 0;
  peer2!.on('data', (c: Buffer) => (got += c.length));
  await once(peer2!, 'end');
  assert.equal(got, 200_000);
  assert.ok(accepted[0]!.readableLength <= window);
});

test('destroying one end resets the stream at the other; a reset open is a dial error', async () => {
  const { accepted, open } = await pair(16 * 1024);
  const g = await open();
  const a = accepted[0]!;
  const err = once(a, 'error');
  g.destroy();
  const [e] = (await err) as [Error & { resetCode?: string }];
  assert.equal(e.resetCode, 'cancel');

  // An agent that cannot reach its service resets at once: the open rejects as a dial failure.
  const refusing = await pair(16 * 1024, (s) => s.reset('refused'));
  await assert.rejects(refusing.open(), (e: Error & { code?: string }) => e.code === 'SLUICE_ERR_DIAL_FAILED' && /refused/.test(e.message));
});

test('an open the agent never answers fails with DIAL_TIMEOUT on the injected clock and resets the stream', async () => {
  const held = await pair(16 * 1024, () => {}); // the agent sees STREAM_OPEN and never answers
  let outcome: string | undefined;
  const opening = held.open().then(
    () => (outcome = 'opened'),
    (e: Error & { code?: string }) => (outcome = e.code),
  );
  await waitFor(() => held.accepted.length === 1, 'the agent saw STREAM_OPEN');
  const atAgent = held.accepted[0]!;
  const reset = once(atAgent, 'error');
  held.clock.advance(999);
  await new Promise((r) => setImmediate(r));
  assert.equal(outcome, undefined, 'still waiting 1 ms before the deadline');
  held.clock.advance(1);
  await opening;
  assert.equal(outcome, 'SLUICE_ERR_DIAL_TIMEOUT');
  const [e] = (await reset) as [Error & { resetCode?: string }];
  assert.equal(e.resetCode, 'timeout', 'the agent is told the open timed out');
  assert.equal(held.gm.size, 0);

  // An accepted open leaves no timer behind.
  const quick = await pair(16 * 1024);
  await quick.open();
  assert.equal(quick.clock.pendingTimers, 0);
});

/** Opens early on `p` with `settled` recorded; the gateway's writes toward the agent are counted. */
function openEarly(p: Awaited<ReturnType<typeof pair>>, onSettled?: () => void) {
  const writes: Buffer[] = [];
  const write = p.g2a.write.bind(p.g2a);
  p.g2a.write = ((chunk: Buffer, ...rest: never[]) => (writes.push(chunk), write(chunk, ...rest))) as typeof p.g2a.write;
  const settled: (SluiceError | undefined)[] = [];
  const g = p.gm.openEarly(1, EP, EP, 1000, (err) => {
    settled.push(err);
    onSettled?.();
  });
  return { g, settled, writes };
}

test('early data: bytes written before the accept leave in the same write as STREAM_OPEN and wait at the agent', async () => {
  const p = await pair(16 * 1024, () => {}); // the agent answers when the test says
  const { g, settled, writes } = openEarly(p);
  g.write(Buffer.from('hello before accept'));
  await waitFor(() => p.accepted.length === 1, 'the agent saw STREAM_OPEN');
  assert.equal(writes.length, 1, 'STREAM_OPEN and the first bytes are one write');
  assert.deepEqual(settled, [], 'not settled before the agent answers');
  const a = p.accepted[0]!;
  await waitFor(() => a.readableLength > 0, 'the first bytes wait at the agent');
  p.am.accept(a);
  await waitFor(() => settled.length === 1, 'settled at STREAM_ACCEPT');
  assert.equal(settled[0], undefined);
  assert.equal(String(a.read()), 'hello before accept');
  a.write('answer');
  const [reply] = (await once(g, 'data')) as [Buffer];
  assert.equal(String(reply), 'answer');
  assert.equal(p.clock.pendingTimers, 0, 'no open deadline left behind');
});

test('early data: a refused open settles as a dial failure and closes the stream quietly, without a reset back', async () => {
  const p = await pair(16 * 1024, (s) => s.reset('refused'));
  // The opener ends its side when told (as the route stops its relay): still no reset back.
  const { g, settled, writes } = openEarly(p, () => g.destroy());
  g.write(Buffer.from('lost'));
  let streamError: Error | undefined;
  g.on('error', (e) => (streamError = e));
  await once(g, 'close');
  assert.equal(settled.length, 1);
  assert.equal(settled[0]?.code, 'SLUICE_ERR_DIAL_FAILED');
  assert.match(settled[0]!.message, /refused/);
  assert.equal(streamError, undefined, 'the opener was told; the stream has no error of its own');
  await new Promise((r) => setImmediate(r));
  assert.equal(writes.length, 1, 'only the open and its data went out: no STREAM_RESET for a stream the agent reset');
  assert.equal(p.gm.size, 0);
  assert.equal(p.am.size, 0);
});

test('early data: a stream destroyed before the accept settles as failed and resets the agent side; so does the deadline', async () => {
  const p = await pair(16 * 1024, () => {});
  const { g, settled } = openEarly(p);
  await waitFor(() => p.accepted.length === 1, 'the agent saw STREAM_OPEN');
  const a = p.accepted[0]!;
  const reset = once(a, 'error');
  g.destroy();
  assert.equal(settled.length, 1);
  assert.equal(settled[0]?.code, 'SLUICE_ERR_DIAL_FAILED');
  const [e] = (await reset) as [Error & { resetCode?: string }];
  assert.equal(e.resetCode, 'cancel');
  assert.equal(p.clock.pendingTimers, 0);

  // The deadline: settled with DIAL_TIMEOUT on the injected clock, the agent told 'timeout'.
  const q = await pair(16 * 1024, () => {});
  const late = openEarly(q);
  await waitFor(() => q.accepted.length === 1, 'the agent saw STREAM_OPEN');
  const timedOut = once(q.accepted[0]!, 'error');
  q.clock.advance(1000);
  assert.equal(late.settled[0]?.code, 'SLUICE_ERR_DIAL_TIMEOUT');
  const [t] = (await timedOut) as [Error & { resetCode?: string }];
  assert.equal(t.resetCode, 'timeout');
  assert.ok(late.g.destroyed);
  assert.equal(late.settled.length, 1, 'settled once');
});
