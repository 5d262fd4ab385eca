import dgram from 'node:dgram';
import { once } from 'node:events';
import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { connectToGateway } from '../../src/agent/gateway-connection.js';
import { systemClock } from '../../src/core/clock.js';
import { parseConfig } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/expose-config.js';
import {
  DatagramOpener, DatagramSealer, type ControlMessage, type ControlMessageType, type OpenedDatagram, type StreamOpen,
} from '../../src/protocol/tunnel/index.js';
import { StreamMux } from '../../src/upstream/agent/stream-mux.js';
import type { TunnelStream } from '../../src/upstream/agent/tunnel-stream.js';
import { TOKEN, startGateway } from './expose-helpers.js';

let sharedState: string | undefined;
function stateDir(): string {
  if (!sharedState) {
    sharedState = mkdtempSync(join(tmpdir(), 'sluice-peer-'));
    process.once('exit', () => rmSync(sharedState!, { recursive: true, force: true }));
  }
  return sharedState;
}

/** A gateway that knows agents home, laptop and other (all with TOKEN). */
export function peerGatewayConfig(extra = ''): GatewayConfig {
  const yaml = [
    'gateway:',
    '  listen: 127.0.0.1:0',
    `  stateDir: ${stateDir()}`,
    '  agents:',
    `    home: { token: "${TOKEN}" }`,
    `    laptop: { token: "${TOKEN}" }`,
    `    other: { token: "${TOKEN}" }`,
    '  ports: 1024-65535',
    '  keepaliveInterval: 1s',
    extra,
  ].join('\n');
  const r = parseConfig(yaml);
  if (!r.ok) throw new Error(`gateway config: ${JSON.stringify(r.issues)}`);
  return r.config.gateway!;
}

export async function startPeerGateway(t: TestContext, extra = '') {
  return startGateway(t, peerGatewayConfig(extra));
}

/** Copies the buffers of a decoded message: they are views of the reader's input. */
function own(m: ControlMessage): ControlMessage {
  if (m.type === 'datagram') return { ...m, payload: Buffer.from(m.payload) };
  if (m.type === 'signal') return { ...m, payload: Buffer.from(m.payload) };
  return m;
}

export type RawAgent = Awaited<ReturnType<typeof rawAgent>>;

/**
 * A bare control connection that authenticates as `name`, with a StreamMux and a queue of every
 * other message. Streams the gateway opens wait in `opened` for the test to accept or reset.
 * `udp()` adds a socket with the connection's datagram keys.
 */
export async function rawAgent(t: TestContext, gw: { port: number; fingerprint: string }, name: string) {
  const abort = new AbortController();
  const datagramKeyId = randomInt(1, 0xffff_fffe);
  const c = await connectToGateway({
    host: '127.0.0.1',
    port: gw.port,
    name,
    token: TOKEN,
    fingerprint: gw.fingerprint.replace(/^sha256:/, '').replace(/:/g, '').toLowerCase(),
    ca: undefined,
    serverName: undefined,
    datagramKeyId,
    resumeKeyId: 0,
    streamWindow: 256 * 1024,
    timeoutMs: 5000,
    clock: systemClock,
    signal: abort.signal,
  });
  const inbox: ControlMessage[] = [];
  const waiters: (() => void)[] = [];
  const opened: { stream: TunnelStream; m: StreamOpen }[] = [];
  const mux = new StreamMux(
    c.channel,
    { role: 'agent', localWindow: 256 * 1024, peerWindow: c.authOk.streamWindow, maxStreams: 100 },
    (stream, m) => {
      opened.push({ stream, m });
      for (const w of waiters.splice(0)) w();
    },
  );
  c.channel.onMessage((m) => {
    if (mux.handle(m)) return;
    inbox.push(own(m));
    for (const w of waiters.splice(0)) w();
  });
  t.after(() => {
    abort.abort();
    c.channel.destroy();
  });
  const until = async <T>(take: () => T | undefined, what: string, timeoutMs: number): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const got = take();
      if (got !== undefined) return got;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${name}: no ${what} within ${timeoutMs}ms; inbox: ${inbox.map((m) => m.type).join(',')}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  };
  const agent = {
    name,
    channel: c.channel,
    mux,
    keys: c.keys,
    authOk: c.authOk,
    datagramKeyId,
    inbox,
    opened,
    send: (m: ControlMessage) => c.channel.send(m),
    /** Says something harmless, so the gateway treats the link as reachable (it has spoken since AUTH_OK). */
    ready: () => c.channel.send({ type: 'unpublish', serviceId: 0xffff }),
    /** The next message of `type` (optionally matching), taken out of the inbox. */
    next<T extends ControlMessageType>(type: T, match: (m: Extract<ControlMessage, { type: T }>) => boolean = () => true, timeoutMs = 3000) {
      return until(
        () => {
          const i = inbox.findIndex((m) => m.type === type && match(m as Extract<ControlMessage, { type: T }>));
          return i < 0 ? undefined : (inbox.splice(i, 1)[0] as Extract<ControlMessage, { type: T }>);
        },
        type,
        timeoutMs,
      );
    },
    nextOpened: (timeoutMs = 3000) => until(() => opened.shift(), 'stream-open', timeoutMs),
    /** A UDP socket that talks sealed datagrams with the gateway under this connection's keys. */
    async udp(gatewayPort: number) {
      const socket = dgram.createSocket('udp4');
      socket.bind(0, '127.0.0.1');
      await once(socket, 'listening');
      t.after(() => socket.close());
      const sealer = new DatagramSealer({ key: c.keys.send, direction: c.keys.sendDirection, peerKeyId: c.authOk.datagramKeyId });
      const opener = new DatagramOpener({ key: c.keys.receive, direction: c.keys.receiveDirection, keyId: datagramKeyId });
      const received: OpenedDatagram[] = [];
      socket.on('message', (buf) => {
        const r = opener.open(buf);
        if (r.ok && r.datagram.kind === 'data') received.push({ ...r.datagram, payload: Buffer.from(r.datagram.payload) });
        else if (r.ok) received.push(r.datagram);
        for (const w of waiters.splice(0)) w();
      });
      let counter = 0;
      const send = (buf: Buffer) => socket.send(buf, gatewayPort, '127.0.0.1');
      return {
        socket,
        received,
        keepalive: () => send(sealer.sealKeepalive(++counter)),
        data: (tag: number, payload: Buffer) => send(sealer.sealData(tag, payload)),
        /** The next data datagram on `tag`. */
        nextData: (tag: number, timeoutMs = 3000) =>
          until(
            () => {
              const i = received.findIndex((d) => d.kind === 'data' && d.tag === tag);
              return i < 0 ? undefined : (received.splice(i, 1)[0] as Extract<OpenedDatagram, { kind: 'data' }>);
            },
            `udp data on tag ${tag}`,
            timeoutMs,
          ),
      };
    },
  };
  return agent;
}
