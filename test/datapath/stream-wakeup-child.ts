// A child process for stream-engine-wakeups.test.ts: scenarios that need a process of their own
// (an uncaught exception from the engine's event callback, a low descriptor limit). Prints one
// JSON line with what it saw and exits.
import net from 'node:net';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { NativeStreamDatapath } from '../../src/datapath/native/native-stream-datapath.js';
import { streamBindingOf } from '../../src/datapath/native/stream-binding.js';

const loaded = loadNativeBinding();
if (!loaded.ok) throw new Error(loaded.reason);
const binding = streamBindingOf(loaded.binding);
if (typeof binding === 'string') throw new Error(binding);
const dp = new NativeStreamDatapath(binding);

/** Keeps the loop from running for `ms`: connections meanwhile queue in the kernel. */
function block(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until);
}

async function throwingHandler(): Promise<object> {
  // Two connections accepted in one batch; the listener's callback throws on the first. The
  // second must still reach it (and be closed by it), and the error must still be uncaught.
  let uncaught = 0;
  process.on('uncaughtException', () => void uncaught++);
  let calls = 0;
  let handled = 0;
  const l = await dp.listen('127.0.0.1', 0, (conn) => {
    if (calls++ === 0) throw new Error('a failing connection handler');
    handled++;
    conn.destroy();
  });
  // Both connects are issued (on the next tick) before the loop polls again, and the handshakes
  // finish meanwhile: the engine accepts both in one batch.
  const clients = [0, 1].map(() => net.connect(l.local.port, '127.0.0.1').on('error', () => {}));
  process.nextTick(() => block(30));
  const deadline = Date.now() + 3000;
  while (handled < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  for (const c of clients) c.destroy();
  await l.close();
  return { calls, handled, uncaught };
}

async function lowFdLimit(port: number): Promise<object> {
  // Run under a descriptor limit far below the connections the parent opens: accept4 meets
  // EMFILE, the listener pauses until the engine's next tick, and every connection is still
  // accepted (and closed here) once descriptors are free again.
  let accepted = 0;
  const l = await dp.listen('127.0.0.1', port, (conn) => {
    accepted++;
    conn.destroy();
  });
  process.stdout.write(`${JSON.stringify({ port: l.local.port })}\n`);
  await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
  await l.close();
  return { accepted };
}

const scenario = process.argv[2];
const out = scenario === 'throwing-handler' ? await throwingHandler() : await lowFdLimit(0);
process.stdout.write(`${JSON.stringify(out)}\n`);
dp.destroy();
process.exit(0);
