// The engine's adaptive receive delay (native/src/hold.cc, docs/datapath.md "An adaptive receive
// delay"), read from its counters: below the rate floor nothing is held whatever the delay; the
// delay engages when the rate rises past the floor and disengages when it falls; each sleep lasts
// about `batch` datagrams' time, not the whole bound. The sender is another process: while the
// engine sleeps, this process's event loop is blocked.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { NativeDatapath, type NativeDatapathOptions } from '../../src/datapath/native/native-datapath.js';
import { waitFor } from '../helpers/net.js';

const loaded = loadNativeBinding();
const skip = loaded.ok ? false : `native datapath unavailable: ${loaded.reason}`;

async function listening(t: TestContext, opts: NativeDatapathOptions) {
  if (!loaded.ok) throw new Error('unreachable');
  const dp = new NativeDatapath(loaded.binding, loaded.layout, opts);
  t.after(() => dp.destroy());
  let got = 0;
  const listener = await dp.listen('127.0.0.1', 0, { onDatagram: () => void got++, onSendError: () => {} });
  t.after(() => listener.close());
  return { dp, port: listener.local.port, got: () => got };
}

/**
 * Another process sends phases of datagrams to `port`: `ticks` times, `perTick` datagrams then a
 * pause of `gapMs`. Resolves with each phase's duration in ms (as the sender measured it).
 */
async function phases(t: TestContext, port: number, list: { ticks: number; perTick: number; gapMs: number }[]): Promise<number[]> {
  const script = `
    const s = require('node:dgram').createSocket('udp4');
    const list = ${JSON.stringify(list)};
    const took = [];
    const b = Buffer.alloc(64);
    let p = 0, tick = 0, started = performance.now();
    const step = () => {
      const ph = list[p];
      for (let i = 0; i < ph.perTick; i++) s.send(b, ${port}, '127.0.0.1');
      if (++tick < ph.ticks) return setTimeout(step, ph.gapMs);
      took.push(performance.now() - started);
      tick = 0; p++; started = performance.now();
      if (p < list.length) return setTimeout(step, list[p].gapMs);
      s.send(b, ${port}, '127.0.0.1', () => { s.close(); process.stdout.write(JSON.stringify(took)); });
    };
    step();`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill());
  let out = '';
  child.stdout.on('data', (d: Buffer) => void (out += d.toString()));
  const [code] = await once(child, 'exit');
  assert.equal(code, 0, 'the sender ran to the end');
  return JSON.parse(out) as number[];
}

const total = (list: { ticks: number; perTick: number }[]) => list.reduce((n, p) => n + p.ticks * p.perTick, 0) + 1;

test('adaptive delay: traffic below the floor is never held, though dense enough for the delay alone', { skip }, async (t) => {
  // 1 ms apart (at most 1,000/s) under a 5 ms delay: the fixed rule holds this (receive-delay.test.ts,
  // the first test); a floor of 3,000/s does not.
  const l = await listening(t, { receiveDelayUs: 5000, receiveDelayMinRate: 3000 });
  const list = [{ ticks: 80, perTick: 1, gapMs: 1 }];
  await phases(t, l.port, list);
  await waitFor(() => l.got() === total(list), `${total(list)} datagrams (got ${l.got()})`);
  const s = l.dp.receiveDelayState;
  assert.equal(s.sleeps, 0, 'no sleep below the floor');
  assert.equal(s.engages, 0);
  assert.equal(s.engaged, false);
  assert.ok(s.rate > 0 && s.rate < 3000, `the measured rate (${s.rate}/s) is below the floor`);
});

test('adaptive delay: engages when the rate rises past the floor, disengages when it falls', { skip }, async (t) => {
  const l = await listening(t, { receiveDelayUs: 2000, receiveDelayMinRate: 3000 });
  // Fast: 40 datagrams a tick (above 3,000/s even if the sender's 1 ms timers run 10 ms late);
  // slow: 2 a tick (at most 2,000/s, below 3/4 of the floor, yet dense enough for the fixed rule).
  const list = [
    { ticks: 60, perTick: 40, gapMs: 1 },
    { ticks: 60, perTick: 2, gapMs: 1 },
  ];
  await phases(t, l.port, list);
  await waitFor(() => l.got() === total(list), `${total(list)} datagrams (got ${l.got()})`);
  const s = l.dp.receiveDelayState;
  assert.ok(s.engages >= 1, `engaged ${s.engages} times`);
  assert.ok(s.sleeps >= 1, `slept ${s.sleeps} times while engaged`);
  assert.ok(s.disengages >= 1, `disengaged ${s.disengages} times`);
  assert.equal(s.engaged, false, 'off at the end: the last windows were slow');
  assert.ok(s.rate < 3000 * 0.75, `the last window's rate ${s.rate}/s`);
});

test('adaptive delay: each sleep lasts about `batch` datagrams\' time, not the whole bound', { skip }, async (t) => {
  // A bound of 10 ms would allow at most one sleep per 10 ms of traffic (nanosleep never returns
  // early); at tens of thousands of datagrams/s, a batch of 4 is a fraction of a millisecond.
  const delayUs = 10_000;
  const l = await listening(t, { receiveDelayUs: delayUs, receiveDelayMinRate: 3000, receiveDelayBatch: 4 });
  const list = [{ ticks: 100, perTick: 50, gapMs: 1 }];
  const [ms] = await phases(t, l.port, list);
  await waitFor(() => l.got() === total(list), `${total(list)} datagrams (got ${l.got()})`);
  const s = l.dp.receiveDelayState;
  const atMostWithFullSleeps = Math.ceil(ms! / (delayUs / 1000)) + 2;
  assert.ok(s.engages >= 1, 'engaged');
  assert.ok(s.sleeps > atMostWithFullSleeps, `${s.sleeps} sleeps in ${ms!.toFixed(0)} ms of traffic (full sleeps: at most ${atMostWithFullSleeps})`);
});

test('adaptive delay: the addon refuses a negative floor or batch', { skip }, (t) => {
  if (!loaded.ok) return;
  const dp = new NativeDatapath(loaded.binding, loaded.layout, {});
  t.after(() => dp.destroy());
  assert.throws(() => loaded.binding.receiveDelayAdaptive!(dp.engine!.handle, -1, 0), /receiveDelayAdaptive/);
  assert.throws(() => loaded.binding.receiveDelayAdaptive!(dp.engine!.handle, 0, -1), /receiveDelayAdaptive/);
  assert.deepEqual(dp.receiveDelayState, { sleeps: 0, engaged: false, engages: 0, disengages: 0, rate: 0 });
});
