import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import type { TestContext } from 'node:test';
import { waitFor } from './net.js';

/** The warm-up flood's rate (datagrams/s): over any `isolateAbove` the tests set. */
export const WARM_RATE = 2000;
/**
 * The relay's loop is blocked this long while the flooder sends as fast as it can (thousands of
 * datagrams, more than a listener's 1 MiB buffer holds: 2 MiB accounted, about 2,500 of 64 B)
 * and the second client sends one every 2 ms. Sharing the listener's queue, the second client's
 * datagrams after the first few dozen milliseconds are dropped by the kernel with the flood's;
 * with the flooder on its own socket, only the flooder's are.
 */
export const BLOCK_MS = 400;
const FLOOD_MAX_MS = 10_000;

/**
 * A child process (CommonJS source; args: port, host, udp4|udp6) with a flooder socket and a
 * second client's socket on `host`, driven by messages: `hello` (one round trip of the second
 * client, answers {type: 'hello', got}), `warm` (flood at WARM_RATE), `burst` (answers
 * `bursting`, floods as fast as it can and sends the second client's datagrams every 2 ms for
 * BLOCK_MS + 200 ms, then reports {type: 'report', vSent, vGot, sent, got} 1.5 s later). Bounded
 * by FLOOD_MAX_MS and 4096 sends in flight.
 */
export const floodClients = `
const dgram = require('node:dgram');
const [port, host, type] = process.argv.slice(2);
// The second client's answers arrive in a burst once the relay reads again, while this process is busy flooding: room for them all.
const flood = dgram.createSocket(type), victim = dgram.createSocket({ type, recvBufferSize: 4 << 20 });
const payload = Buffer.alloc(64, 0x46);
let rate = 0, sent = 0, got = 0, started = Date.now(), inflight = 0, stop = false;
const vSeen = new Set(); let vSent = 0;
flood.on('message', () => { got++; });
victim.on('message', (m) => vSeen.add(m.readUInt32BE(0)));
const sendVictim = () => { const b = Buffer.alloc(64, 0x56); b.writeUInt32BE(vSent++, 0); victim.send(b, +port, host); };
const pump = () => {
  if (stop || Date.now() - started > ${FLOOD_MAX_MS}) return;
  const due = rate === Infinity ? 256 : Math.floor(((Date.now() - started) * rate) / 1000) - sent;
  for (let i = 0; i < due && i < 256 && inflight < 4096; i++) { inflight++; sent++; flood.send(payload, +port, host, () => { inflight--; }); }
  setImmediate(pump);
};
process.on('message', (m) => {
  if (m === 'hello') { sendVictim(); setTimeout(() => process.send({ type: 'hello', got: vSeen.size }), 300); }
  if (m === 'warm') { rate = ${WARM_RATE}; started = Date.now(); sent = 0; pump(); }
  if (m === 'burst') {
    rate = Infinity; vSeen.clear(); vSent = 0;
    process.send({ type: 'bursting' });
    const v = setInterval(sendVictim, 2);
    setTimeout(() => {
      clearInterval(v); stop = true;
      setTimeout(() => { process.send({ type: 'report', vSent, vGot: vSeen.size, sent, got }); flood.close(); victim.close(); }, 1500);
    }, ${BLOCK_MS} + 200);
  }
});
let bound = 0;
const ready = () => { if (++bound === 2) process.send({ type: 'bound', flood: flood.address().port, victim: victim.address().port }); };
flood.bind(0, host, ready); victim.bind(0, host, ready);
`;

export type FloodMessage = { type: string; [k: string]: number | string };

/** The child's next message of `type`; rejects if it exits first. */
export function nextMessage(child: ChildProcess, type: string, timeoutMs = 60_000): Promise<FloodMessage> {
  return new Promise((resolve, reject) => {
    const on = (m: FloodMessage) => {
      if (m.type !== type) return;
      child.off('message', on);
      clearTimeout(timer);
      resolve(m);
    };
    // Bounded: a message that never comes fails the test instead of holding the suite.
    const timer = setTimeout(() => {
      child.off('message', on);
      reject(new Error(`no "${type}" from the client process within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('message', on);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the client process exited (${code}) before "${type}"`));
    });
  });
}

/**
 * Sends `burst`, and once the child floods, blocks this process's loop for BLOCK_MS (the relay in
 * it reads nothing meanwhile: the kernel queues or drops); then checks its report: the flooder
 * still served; with `isolated` (its own socket), `kernelDrops()` reported and the second client's
 * datagrams taken in by the relay (`victimIn()`, its session's packetsFromClient: >= 75 % of what it
 * sent), else no claim on the second client (the shared queue, as before). Sharing the listener's
 * queue it gets 7-10 % of its answers; on its own socket the flooder leaves the second client
 * 83-100 % of its answers on a quiet machine (bursts of 80-115k). The claim is on the relay's
 * intake, not the answers: these routes lift every rate limit, so the flood reaches the echo
 * upstream (JavaScript, in this process, one queue for both sessions) faster than it answers, and
 * on a loaded machine the kernel drops at that queue take a share of the second client's
 * datagrams too, behind the relay (167 of 233 answered, once, in a CI run beside other work).
 */
export async function burstWhileBlocked(t: TestContext, child: ChildProcess, isolated: boolean, kernelDrops: () => number, kind: string, victimIn: () => number): Promise<void> {
  const in0 = victimIn();
  child.send('burst');
  await nextMessage(child, 'bursting');
  const until = Date.now() + BLOCK_MS;
  while (Date.now() < until);
  const report = await nextMessage(child, 'report');
  const taken = victimIn() - in0;
  t.diagnostic(`${kind}: second client ${report.vGot}/${report.vSent} answered, ${taken} taken in, flood sent ${report.sent} echoed ${report.got}, kernel drops at its own socket ${kernelDrops()}`);
  assert.ok((report.got as number) > 0, 'the flooder is still served');
  if (!isolated) return;
  await waitFor(() => kernelDrops() > 0, 'kernel drops at the flooder socket reported', 3000);
  assert.ok((report.vSent as number) >= 10, `the second client sent ${report.vSent}`);
  assert.ok(taken >= (report.vSent as number) * 0.75, `the relay took in ${taken} of the second client's ${report.vSent} datagrams`);
  assert.ok((report.vGot as number) > 0, 'the second client is answered');
}
