import dgram from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import type { AgentConfig, GatewayConfig } from '../../src/config/expose-config.js';
import { systemClock, type Clock } from '../../src/core/clock.js';
import { EventStream, type SluiceEvent } from '../../src/observe/events.js';
import { Gateway } from '../../src/gateway/gateway.js';
import { Agent } from '../../src/agent/agent.js';
import { aclAdmitter } from '../../src/admission/acl-admitter.js';
import { waitFor } from '../helpers/net.js';
import type { UdpDatapath } from '../../src/datapath/udp-datapath.js';
import { nativeStreamCase } from '../datapath/stream-datapaths.js';
import { nativeCase } from '../datapath/datapaths.js';
import { DirectDatagramDialer } from '../../src/upstream/direct/udp-dialer.js';

export const TOKEN = 'test-token-0123456789abcdef';

/** One certificate for the whole test process (openssl costs ~50 ms a run). */
let sharedState: string | undefined;
function stateDir(): string {
  if (!sharedState) {
    sharedState = mkdtempSync(join(tmpdir(), 'sluice-gw-'));
    process.once('exit', () => rmSync(sharedState!, { recursive: true, force: true }));
  }
  return sharedState;
}

/** The events a gateway or agent emitted so far, by type. */
export interface Recorded {
  of<T extends SluiceEvent['type']>(type: T): Extract<SluiceEvent, { type: T }>[];
}

const recorder = (seen: readonly SluiceEvent[]): Recorded => ({
  of: <T extends SluiceEvent['type']>(type: T) => seen.filter((e): e is Extract<SluiceEvent, { type: T }> => e.type === type),
});

/** `gateway:` YAML body (indented by the caller's keys), parsed with the real schema. */
export function gatewayConfig(extra = '', listen = '127.0.0.1:0'): GatewayConfig {
  const yaml = `gateway:\n  listen: ${listen}\n  stateDir: ${stateDir()}\n  agents:\n    home: { token: "${TOKEN}" }\n  ports: 1024-65535\n${extra}`;
  const r = parseConfig(yaml);
  if (!r.ok) throw new Error(`gateway config: ${JSON.stringify(r.issues)}`);
  return r.config.gateway!;
}

export function agentConfig(gw: { port: number; fingerprint: string }, expose: string, extra = ''): AgentConfig {
  const yaml = `agent:\n  name: home\n  gateway: 127.0.0.1:${gw.port}\n  token: "${TOKEN}"\n  fingerprint: ${gw.fingerprint}\n  reconnect: { initial: 50ms, max: 500ms }\n  expose:\n${expose}\n${extra}`;
  const r = parseConfig(yaml);
  if (!r.ok) throw new Error(`agent config: ${JSON.stringify(r.issues)}`);
  return r.config.agent!;
}

/**
 * The datapath gateways and agents of these suites use when a test names none: js, or the native
 * one with SLUICE_TEST_DATAPATH=native (how the exposure and peer suites run on both).
 */
const suiteDatapath = (): UdpDatapath | undefined => (process.env.SLUICE_TEST_DATAPATH === 'native' ? nativeCase().datapath : undefined);

export async function startGateway(t: TestContext, config: GatewayConfig, clock: Clock = systemClock, datapath = suiteDatapath()) {
  const events = new EventStream((err) => {
    throw err;
  });
  const seen: SluiceEvent[] = [];
  events.subscribe((e) => seen.push(e));
  const rec = recorder(seen);
  let flow = 0;
  const gateway = await Gateway.start(config, {
    clock,
    events,
    // A native UDP run accepts the public TCP listeners natively too (their relay stays on Node streams).
    routeDeps: (route) => ({ admit: aclAdmitter(route.acl, undefined), nextFlowId: () => ++flow, datapath, streamDatapath: datapath?.kind === 'native' ? nativeStreamCase().datapath : undefined }),
    datapath,
  });
  t.after(() => gateway.close());
  return { gateway, events, seen, rec, port: gateway.tcpAddress.port, fingerprint: gateway.fingerprint };
}

export async function startAgent(t: TestContext, config: AgentConfig, clock: Clock = systemClock, datapath = suiteDatapath()) {
  const events = new EventStream((err) => {
    throw err;
  });
  const seen: SluiceEvent[] = [];
  events.subscribe((e) => seen.push(e));
  const rec = recorder(seen);
  let flow = 1_000_000;
  const agent = await Agent.start(config, {
    clock,
    events,
    nextFlowId: () => ++flow,
    datapath,
    ...(datapath ? { datagramDialer: new DirectDatagramDialer(undefined, datapath) } : {}),
    // The connect listeners (agent.connect) on the same datapath, as `sluice run` puts them.
    ...(datapath ? { routeDeps: () => ({ admit: undefined, nextFlowId: () => ++flow, datapath }) } : {}),
  });
  t.after(() => agent.close());
  return { agent, seen, rec };
}

/** Waits until the agent has every service bound; returns the public ports by service name. */
export async function published(agent: Agent, timeoutMs = 5000): Promise<Record<string, number>> {
  await waitFor(() => agent.state === 'connected' && agent.services().every((s) => s.bound !== undefined), 'services published', timeoutMs);
  return Object.fromEntries(agent.services().map((s) => [s.config.name, s.bound!.port]));
}

/**
 * An on-path box between agent and gateway on 127.0.0.1: TCP is piped through untouched, UDP is
 * forwarded from one socket of its own (so the gateway sees the box as the agent's address),
 * recorded, and dropped while `blocked` (UDP blocked by a firewall).
 */
export async function middlebox(t: TestContext, gatewayPort: number) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((c) => {
    const up = net.connect(box.tcpTarget, '127.0.0.1');
    sockets.add(c).add(up);
    c.pipe(up).pipe(c);
    const kill = () => {
      c.destroy();
      up.destroy();
    };
    c.on('error', kill).on('close', kill);
    up.on('error', kill).on('close', kill);
  });
  let port = 0;
  let front!: dgram.Socket;
  for (let attempt = 0; ; attempt++) {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as net.AddressInfo).port;
    front = dgram.createSocket('udp4');
    try {
      front.bind(port, '127.0.0.1');
      await once(front, 'listening');
      break;
    } catch (err) {
      front.close();
      await new Promise((r) => server.close(r));
      if (attempt > 20) throw err;
    }
  }
  let back = dgram.createSocket('udp4');
  back.bind(0, '127.0.0.1');
  await once(back, 'listening');
  const onBack = (msg: Buffer) => {
    if (box.blocked || !box.agent) return;
    front.send(msg, box.agent.port, box.agent.address);
  };
  const box = {
    /** Set to move the box's gateway-facing socket to a new port (a NAT re-mapping). */
    rebind: false,
    /** Where new TCP connections go (the gateway unless a test points them elsewhere). */
    tcpTarget: gatewayPort,
    port,
    blocked: false,
    /** Datagrams agent -> gateway, as they passed. */
    upstream: [] as Buffer[],
    agent: undefined as { port: number; address: string } | undefined,
    /** Cuts every TCP connection through the box (a control-channel outage). */
    cutTcp() {
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
  };
  front.on('message', (msg, r) => {
    if (box.blocked) return;
    if (box.rebind) {
      box.rebind = false;
      back.close();
      back = dgram.createSocket('udp4');
      back.bind(0, '127.0.0.1');
      back.on('message', onBack);
    }
    box.agent = { port: r.port, address: r.address };
    box.upstream.push(msg);
    back.send(msg, gatewayPort, '127.0.0.1');
  });
  back.on('message', onBack);
  t.after(() => {
    box.cutTcp();
    server.close();
    front.close();
    back.close();
  });
  return box;
}
