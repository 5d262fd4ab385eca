import dgram from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import type { AgentConfig, GatewayConfig } from '../../src/config/expose-config.js';

/** Agent pool suites: a gateway with several agents and groups, and services that say who they are. */

export const GROUP_KEY = 'group-key-0123456789abcdef';
export const tokenOf = (agent: string) => `token-of-${agent}-0123456789`;

export function poolGatewayConfig(t: TestContext, agents: readonly string[], groups: string, extra = ''): GatewayConfig {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-pool-gw-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const yaml = `gateway:
  listen: 127.0.0.1:0
  stateDir: ${dir}
  keepaliveInterval: 1s
  agents:
${agents.map((a) => `    ${a}: { token: "${tokenOf(a)}" }`).join('\n')}
  ports: 1024-65535
  groups:
${groups}
${extra}`;
  const r = parseConfig(yaml);
  if (!r.ok) throw new Error(`gateway config: ${JSON.stringify(r.issues)}`);
  return r.config.gateway!;
}

export function poolAgentConfig(gw: { port: number; fingerprint: string }, name: string, expose: string): AgentConfig {
  const yaml = `agent:
  name: ${name}
  gateway: 127.0.0.1:${gw.port}
  token: "${tokenOf(name)}"
  fingerprint: ${gw.fingerprint}
  reconnect: { initial: 50ms, max: 500ms }
  expose:
${expose}`;
  const r = parseConfig(yaml);
  if (!r.ok) throw new Error(`agent config: ${JSON.stringify(r.issues)}`);
  return r.config.agent!;
}

/** A UDP service on 127.0.0.1:port (0 = any) that answers every datagram with `id:` and the datagram. */
export async function namedUdpService(t: TestContext, id: string, port = 0) {
  const sock = dgram.createSocket('udp4');
  sock.on('message', (msg, r) => sock.send(Buffer.concat([Buffer.from(`${id}:`), msg]), r.port, r.address));
  sock.bind(port, '127.0.0.1');
  await once(sock, 'listening');
  let closed = false;
  const close = () => {
    if (!closed) sock.close();
    closed = true;
  };
  t.after(close);
  return { port: sock.address().port, close };
}

/** A TCP service that writes `id:` first, then echoes. */
export async function namedTcpService(t: TestContext, id: string) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.write(`${id}:`);
    s.pipe(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { port: (server.address() as net.AddressInfo).port, sockets };
}

/** A UDP client bound to `address` (any 127.0.0.0/8 address works on Linux): source hash keys on it. */
export async function udpClientFrom(t: TestContext, address: string) {
  const sock = dgram.createSocket('udp4');
  const inbox: Buffer[] = [];
  let wake: (() => void) | undefined;
  sock.on('message', (m) => {
    inbox.push(m);
    wake?.();
  });
  sock.bind(0, address);
  await once(sock, 'listening');
  t.after(() => {
    try {
      sock.close();
    } catch {
      /* closed */
    }
  });
  return {
    send: (port: number, text: string) => sock.send(Buffer.from(text), port, '127.0.0.1'),
    /** The next reply as text, or rejects after `timeoutMs`. */
    async next(timeoutMs = 3000): Promise<string> {
      const end = Date.now() + timeoutMs;
      while (inbox.length === 0) {
        const left = end - Date.now();
        if (left <= 0) throw new Error(`no reply for ${address}`);
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, Math.min(left, 50));
        });
      }
      return inbox.shift()!.toString();
    },
    /** Sends `text` until a reply comes (UDP: a datagram sent during a move may be lost), at most `tries` times. */
    async ask(port: number, text: string, tries = 20): Promise<string> {
      for (let i = 0; i < tries; i++) {
        sock.send(Buffer.from(text), port, '127.0.0.1');
        try {
          return await this.next(250);
        } catch {
          /* again */
        }
      }
      throw new Error(`no reply for ${address} after ${tries} tries`);
    },
  };
}

/** Connects to 127.0.0.1:port and reads the service's `id:` greeting. */
export async function tcpGreeting(t: TestContext, port: number, timeoutMs = 3000): Promise<{ socket: net.Socket; id: string }> {
  const s = net.connect({ host: '127.0.0.1', port });
  s.on('error', () => {});
  t.after(() => s.destroy());
  const [chunk] = (await once(s, 'data', { signal: AbortSignal.timeout(timeoutMs) })) as [Buffer];
  return { socket: s, id: chunk.toString().split(':')[0]! };
}

/** Writes `text` and reads until `text` came back (after any greeting already read). */
export async function tcpEcho(s: net.Socket, text: string, timeoutMs = 3000): Promise<string> {
  let got = '';
  const done = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`echo of ${text} timed out (got "${got}")`)), timeoutMs);
    const onData = (c: Buffer) => {
      got += c.toString();
      if (got.includes(text)) {
        clearTimeout(timer);
        s.off('data', onData);
        resolve(got);
      }
    };
    s.on('data', onData);
  });
  s.write(text);
  return done;
}
