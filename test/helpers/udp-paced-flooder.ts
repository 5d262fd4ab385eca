import { fork } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { waitFor } from './net.js';

/** What the flooder reports: `bound` (its port) once, `count` when asked, `done` at its end. */
export interface FlooderMessage {
  readonly type: string;
  readonly port?: number;
  readonly sent?: number;
  readonly got?: number;
}

/**
 * A child process flooding 127.0.0.1:`port` open loop with 64 B datagrams of 0x46 at `rate`
 * datagrams/s from one socket, until told `stop` or `maxMs` (bounded too by 4096 sends in flight);
 * it counts what comes back. Resolves once its socket is bound; `count()` asks for sent and got.
 */
export async function startPacedFlooder(t: TestContext, port: number, rate: number, maxMs: number) {
  const source = `
const dgram = require('node:dgram');
const s = dgram.createSocket('udp4');
const payload = Buffer.alloc(64, 0x46);
let sent = 0, got = 0, stop = false, inflight = 0;
const started = Date.now();
s.on('message', () => { got++; });
process.on('message', (m) => { if (m === 'stop') stop = true; if (m === 'count') process.send({ type: 'count', sent, got }); });
s.bind(0, '127.0.0.1', () => {
  process.send({ type: 'bound', port: s.address().port });
  const pump = () => {
    if (stop || Date.now() - started > ${maxMs}) {
      return setTimeout(() => { process.send({ type: 'done', sent, got }); s.close(); }, 200);
    }
    const due = Math.floor(((Date.now() - started) * ${rate}) / 1000) - sent;
    for (let i = 0; i < due && i < 256 && inflight < 4096; i++) { inflight++; sent++; s.send(payload, ${port}, '127.0.0.1', () => { inflight--; }); }
    setImmediate(pump);
  };
  pump();
});
`;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-paced-flooder-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'flood.cjs'), source);
  const child = fork(join(dir, 'flood.cjs'), [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  t.after(() => {
    if (child.exitCode === null) child.kill();
  });
  const messages: FlooderMessage[] = [];
  child.on('message', (m) => messages.push(m as FlooderMessage));
  const count = async (): Promise<FlooderMessage> => {
    const n = messages.length;
    child.send('count');
    await waitFor(() => messages.length > n && messages[messages.length - 1]!.type !== 'bound', "the flooder's count");
    return messages[messages.length - 1]!;
  };
  await waitFor(() => messages.some((m) => m.type === 'bound'), 'flooder bound');
  const floodPort = messages.find((m) => m.type === 'bound')!.port!;
  return { child, messages, count, floodPort };
}

/**
 * The second client beside a flood: a socket on 127.0.0.1 whose `roundTrip(seq, waitMs)` sends one
 * 64 B datagram of 0x56 carrying `seq` to `port` and resolves whether its echo came back in time.
 */
export async function startRoundTripClient(t: TestContext, port: number) {
  const socket = dgram.createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  t.after(() => socket.close());
  const roundTrip = (seq: number, waitMs = 250) =>
    new Promise<boolean>((resolve) => {
      const buf = Buffer.alloc(64, 0x56);
      buf.writeUInt32BE(seq, 0);
      const onMessage = (m: Buffer) => {
        if (m.readUInt32BE(0) !== seq) return;
        clearTimeout(timer);
        socket.off('message', onMessage);
        resolve(true);
      };
      const timer = setTimeout(() => {
        socket.off('message', onMessage);
        resolve(false);
      }, waitMs);
      socket.on('message', onMessage);
      socket.send(buf, port, '127.0.0.1');
    });
  return { socket, roundTrip };
}
