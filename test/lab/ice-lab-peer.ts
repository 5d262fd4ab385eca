import dgram from 'node:dgram';
import { once } from 'node:events';
import readline from 'node:readline';
import { systemClock } from '../../src/core/clock.js';
import { dgramSender } from '../../src/gateway/demux.js';
import { IceAgent } from '../../src/ice/agent.js';
import { formatCandidate } from '../../src/ice/candidate.js';
import type { IceRole } from '../../src/ice/check-message.js';

/**
 * One ICE agent as a program, for the NAT lab's host namespaces. Signalling is stdio: JSON lines
 * out (credentials, candidate, end, state, selected, received) and in (credentials, candidate,
 * end, send, report, close). The test process relays lines between the two peers, so no
 * signalling traffic crosses the lab's network.
 *
 *   node ice-lab-peer.js '{"role":"controlling","host":"10.0.1.2","stun":{...},"turn":{...},"user":"..","pass":".."}'
 */
interface Config {
  role: IceRole;
  host: string;
  stun: { address: string; port: number };
  turn: { address: string; port: number };
  user: string;
  pass: string;
  /** Hard stop for the process, whatever happens. */
  lifetimeMs: number;
}

const cfg = JSON.parse(process.argv[2]!) as Config;
const t0 = performance.now();
const ms = () => Math.round(performance.now() - t0);
const out = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
setTimeout(() => process.exit(3), cfg.lifetimeMs).unref();

const socket = dgram.createSocket('udp4');
socket.bind(0, cfg.host);
await once(socket, 'listening');
const agent = new IceAgent({
  role: cfg.role,
  clock: systemClock,
  stunServers: [cfg.stun],
  turnServers: [{ server: cfg.turn, username: cfg.user, password: cfg.pass }],
});
const ingress = agent.addSocket({ local: { address: cfg.host, port: socket.address().port, family: 4 }, send: dgramSender(socket) });
socket.on('message', (buf, r) => void ingress(buf, { address: r.address, port: r.port }));
let received = 0;
agent.channel.onDatagram(() => void received++);
agent.on('candidate', (c) => out({ type: 'candidate', sdp: formatCandidate(c) }));
agent.on('gathering-complete', ({ errors }) => out({ type: 'end', errors: errors.map((e) => e.message), ms: ms() }));
agent.on('state', (state) => {
  out({ type: 'state', state, ms: ms() });
  if (state === 'connected') out({ type: 'selected', pair: agent.selectedPair, ms: ms() });
});
out({ type: 'credentials', ...agent.localCredentials });

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const m = JSON.parse(line) as { type: string; ufrag?: string; pwd?: string; sdp?: string; count?: number };
  if (m.type === 'credentials') agent.setRemoteCredentials({ ufrag: m.ufrag!, pwd: m.pwd! });
  else if (m.type === 'candidate') agent.addRemoteCandidate(m.sdp!);
  else if (m.type === 'end') agent.addRemoteCandidate(null);
  else if (m.type === 'send') for (let i = 0; i < m.count!; i++) agent.channel.send(Buffer.from(`datagram ${i}`));
  else if (m.type === 'report') out({ type: 'received', count: received, pairs: agent.pairs.length });
  else if (m.type === 'close') {
    void agent.close().finally(() => {
      socket.close();
      process.exit(0);
    });
  }
});
void agent.gather();
