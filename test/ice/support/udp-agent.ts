import type { TestContext } from 'node:test';
import { systemClock } from '../../../src/core/clock.js';
import { dgramSender } from '../../../src/gateway/demux.js';
import { IceAgent, type IceAgentOptions } from '../../../src/ice/agent.js';
import { udpSocket } from '../../turn/udp.js';

/**
 * An agent on a real UDP socket on 127.0.0.1:0 with the system clock. The agent is closed
 * (deleting its TURN allocations) before the socket, in t.after.
 */
export async function udpAgent(t: TestContext, options: Partial<IceAgentOptions> & Pick<IceAgentOptions, 'role'>) {
  let agent: IceAgent | undefined;
  const { socket, local } = await udpSocket(t, () => Promise.race([agent?.close(), new Promise((r) => setTimeout(r, 2000))]));
  agent = new IceAgent({ clock: systemClock, ...options });
  const ingress = agent.addSocket({ local, send: dgramSender(socket) });
  const other: Buffer[] = [];
  socket.on('message', (buf, r) => {
    if (!ingress(buf, { address: r.address, port: r.port })) other.push(buf);
  });
  return { agent, socket, local, other };
}

/** Resolves when `agent` reaches `state`; rejects on `failed`/`closed` or after `timeoutMs`. */
export function reach(agent: IceAgent, state: string, timeoutMs = 15_000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (agent.state === state) return resolve();
    const timer = setTimeout(() => reject(new Error(`agent still ${agent.state} after ${timeoutMs} ms (wanted ${state})`)), timeoutMs);
    const on = (s: string) => {
      if (s === state) {
        clearTimeout(timer);
        agent.off('state', on);
        resolve();
      } else if ((s === 'failed' || s === 'closed') && s !== state) {
        clearTimeout(timer);
        agent.off('state', on);
        reject(new Error(`agent went ${s} (wanted ${state})`));
      }
    };
    agent.on('state', on);
  });
}

/**
 * Sends `count` datagrams each way, `burst` at a time with a pause between bursts, and resolves
 * with how many arrived on each side (waiting up to 2 s for stragglers).
 */
export async function exchange(a: IceAgent, b: IceAgent, count: number, burst = 20, pauseMs = 2): Promise<{ atA: number; atB: number; inOrder: boolean }> {
  const gotA: number[] = [];
  const gotB: number[] = [];
  a.channel.onDatagram((d) => gotA.push(d.readUInt32BE(0)));
  b.channel.onDatagram((d) => gotB.push(d.readUInt32BE(0)));
  for (let i = 0; i < count; i++) {
    const buf = Buffer.alloc(200);
    buf.writeUInt32BE(i, 0);
    a.channel.send(buf);
    b.channel.send(buf);
    if (i % burst === burst - 1) await new Promise((r) => setTimeout(r, pauseMs));
  }
  const end = Date.now() + 2000;
  while ((gotA.length < count || gotB.length < count) && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  const sorted = (x: number[]) => x.every((v, i) => i === 0 || v > x[i - 1]!);
  return { atA: gotA.length, atB: gotB.length, inOrder: sorted(gotA) && sorted(gotB) };
}
