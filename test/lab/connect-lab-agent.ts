import dgram from 'node:dgram';
import { once } from 'node:events';
import readline from 'node:readline';
import { randomBytes } from 'node:crypto';
import { parseConfig } from '../../src/config/load.js';
import { systemClock } from '../../src/core/clock.js';
import { EventStream } from '../../src/observe/events.js';
import { Gateway } from '../../src/gateway/gateway.js';
import { Agent } from '../../src/agent/agent.js';
import { aclAdmitter } from '../../src/admission/acl-admitter.js';

/**
 * One process of the connect NAT lab (connect-nat-matrix.test.ts), run inside a lab namespace:
 *
 *   node connect-lab-agent.js gateway '<yaml>'   a Sluice gateway from the library; prints {"type":"ready","fingerprint",...}
 *   node connect-lab-agent.js agent '<yaml>'     a Sluice agent; prints {"type":"connected"} and every peer-path event;
 *                                                stdin {"type":"snapshot","peer"} prints the link and flow state
 *   node connect-lab-agent.js echo <port>        a UDP echo on 127.0.0.1:<port>; prints {"type":"ready"}
 *   node connect-lab-agent.js client             a UDP client on 127.0.0.1; stdin {"type":"stream",...} sends a
 *                                                stream to a port and prints what came back, byte for byte
 *
 * Output is JSON lines on stdout. Lifetime is bounded (LIFETIME_MS) whatever the test does, and
 * SIGTERM closes the Sluice object before exiting.
 */

const LIFETIME_MS = 600_000;
const t0 = performance.now();
const ms = () => Math.round((performance.now() - t0) * 10) / 10;
const out = (o: object) => process.stdout.write(`${JSON.stringify({ ...o, ms: ms() })}\n`);
setTimeout(() => process.exit(3), LIFETIME_MS).unref();

const [role, arg] = process.argv.slice(2);
let closing: (() => Promise<void>) | undefined;
process.on('SIGTERM', () => {
  const stop = closing ?? (async () => {});
  const hard = setTimeout(() => process.exit(4), 2000);
  void stop().finally(() => {
    clearTimeout(hard);
    process.exit(0);
  });
});

const events = new EventStream((err) => out({ type: 'sink-error', message: String(err) }));
const lines = readline.createInterface({ input: process.stdin });

function parsed(yaml: string) {
  const r = parseConfig(yaml);
  if (!r.ok) {
    out({ type: 'config-error', issues: r.issues });
    process.exit(2);
  }
  return r.config;
}

if (role === 'gateway') {
  const config = parsed(arg!).gateway!;
  let flow = 0;
  const gateway = await Gateway.start(config, {
    clock: systemClock,
    events,
    routeDeps: (route) => ({ admit: aclAdmitter(route.acl, undefined), nextFlowId: () => ++flow }),
  });
  closing = () => gateway.close();
  out({ type: 'ready', fingerprint: gateway.fingerprint, tcp: gateway.tcpAddress, udp: gateway.udpAddress });
  lines.on('line', () => out({ type: 'counters', counters: gateway.counters }));
} else if (role === 'agent') {
  const config = parsed(arg!).agent!;
  events.subscribe((e) => {
    if (e.type === 'peer-path') out({ type: 'peer-path', peer: e.peer, state: e.state, path: e.path, reason: e.reason ?? null });
    else if (e.type === 'agent-connected') out({ type: 'connected', gateway: e.gateway, resumed: e.resumed });
    else if (e.type === 'agent-disconnected') out({ type: 'disconnected', failure: e.failure, message: e.message, retryInMs: e.retryInMs });
    else if (e.type === 'agent-datagram-mode') out({ type: 'datagram-mode', mode: e.mode });
  });
  let flow = 1_000_000;
  const agent = await Agent.start(config, {
    clock: systemClock,
    events,
    nextFlowId: () => ++flow,
  });
  closing = () => agent.close();
  out({ type: 'started', connect: agent.connectRoutes.map((r) => r.local) });
  lines.on('line', (line) => {
    const m = JSON.parse(line) as { type: string; peer?: string };
    if (m.type !== 'snapshot') return;
    const link = m.peer ? agent.peers.links.get(m.peer) : undefined;
    out({
      type: 'snapshot',
      agentState: agent.state,
      links: agent.peers.links.size,
      peersCounters: agent.peers.counters,
      link: link && {
        state: link.state,
        path: link.path,
        timeToDirectMs: link.timeToDirectMs ?? null,
        counters: link.counters,
        lastRefusal: link.lastRefusal ?? null,
        diagnosis: link.diagnosis(),
      },
      flows: agent.peers.flows.map((f) => ({ peer: f.target.peer, service: f.target.service, state: f.state, counters: f.counters })),
    });
  });
} else if (role === 'echo') {
  const s = dgram.createSocket('udp4');
  let seen = 0;
  s.on('message', (m, r) => {
    seen++;
    s.send(m, r.port, r.address);
  });
  s.bind(Number(arg), '127.0.0.1');
  await once(s, 'listening');
  closing = async () => void s.close();
  out({ type: 'ready', port: s.address().port });
  lines.on('line', () => out({ type: 'seen', seen }));
} else if (role === 'client') {
  // One stream at a time: `count` datagrams, one every `gapMs`, each with a unique random payload.
  // A reply counts when its bytes equal what was sent under that sequence number.
  const s = dgram.createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  closing = async () => void s.close();
  let stream:
    | { id: string; sent: Buffer[]; sentAt: number[]; gotAt: (number | undefined)[]; mismatched: number; duplicates: number; stray: number }
    | undefined;
  s.on('message', (m) => {
    const st = stream;
    if (!st) return;
    const text = m.subarray(0, 64).toString('latin1');
    const [id, seq] = text.split(':');
    const i = Number(seq);
    if (id !== st.id || !Number.isInteger(i) || i < 0 || i >= st.sent.length) return void st.stray++;
    if (!m.equals(st.sent[i]!)) return void st.mismatched++;
    if (st.gotAt[i] !== undefined) return void st.duplicates++;
    st.gotAt[i] = performance.now();
  });
  out({ type: 'ready', port: s.address().port });
  let streamStart = 0;
  lines.on('line', (line) => {
    const m = JSON.parse(line) as { type: string; id: string; port: number; count: number; gapMs: number; settleMs: number; size?: number };
    // A mark: the test is about to do something to the network; its time on the stream's time line.
    if (m.type === 'mark') return out({ type: 'marked', atMs: Math.round((performance.now() - streamStart) * 10) / 10 });
    if (m.type !== 'stream') return;
    const st = { id: m.id, sent: [] as Buffer[], sentAt: [] as number[], gotAt: [] as (number | undefined)[], mismatched: 0, duplicates: 0, stray: 0 };
    stream = st;
    const start = performance.now();
    streamStart = start;
    out({ type: 'stream-started', id: m.id });
    let i = 0;
    const tick = () => {
      if (i >= m.count) return void setTimeout(done, m.settleMs);
      const payload = Buffer.concat([Buffer.from(`${m.id}:${i}:`), randomBytes((m.size ?? 100) - 16)]);
      st.sent[i] = payload;
      st.sentAt[i] = performance.now();
      s.send(payload, m.port, '127.0.0.1');
      i++;
      // Paced against the start, so event-loop delays do not stretch the stream.
      setTimeout(tick, Math.max(0, start + i * m.gapMs - performance.now()));
    };
    const done = () => {
      const lost: number[] = [];
      for (let k = 0; k < m.count; k++) if (st.gotAt[k] === undefined) lost.push(k);
      const r = (x: number) => Math.round(x * 10) / 10;
      out({
        type: 'stream-result',
        id: m.id,
        sent: m.count,
        answered: m.count - lost.length,
        lost,
        mismatched: st.mismatched,
        duplicates: st.duplicates,
        stray: st.stray,
        firstReplyMs: st.gotAt[0] === undefined ? null : r(st.gotAt[0] - st.sentAt[0]!),
        // Offsets from the stream's start, for the test to place a flush on the same time line.
        startedAtMs: r(start - t0),
        sentAt: st.sentAt.map((x) => r(x - start)),
        rtt: st.gotAt.map((x, k) => (x === undefined ? null : r(x - st.sentAt[k]!))),
      });
      if (stream === st) stream = undefined;
    };
    tick();
  });
} else {
  out({ type: 'usage', message: `unknown role ${role}` });
  process.exit(2);
}
