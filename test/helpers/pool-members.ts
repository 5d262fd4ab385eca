import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { encodeProxyV2 } from '../../src/protocol/proxy-protocol/index.js';

/** The check payload the pool tests configure (`health.udp.send: text:ping`, expect `pong`). */
export const PROBE = 'ping';

/**
 * A UDP pool member on 127.0.0.1:0. Answers a check (`ping`) with `pong` and data with
 * `<name>:<data>`; counts checks and data (and the source ports of data: one per session).
 * `silent` keeps the socket open and answers nothing; `close()` makes the port unreachable;
 * `revive()` binds the same port again.
 */
export async function udpMember(t: TestContext, name: string) {
  let sock: dgram.Socket;
  const m = {
    name,
    port: 0,
    silent: false,
    probes: 0,
    data: 0,
    probeTimes: [] as number[],
    sources: new Set<number>(),
    async bind(port: number) {
      sock = dgram.createSocket('udp4');
      sock.on('message', (msg, r) => {
        if (msg.toString() === PROBE) {
          m.probes++;
          m.probeTimes.push(Date.now());
          if (!m.silent) sock.send('pong', r.port, r.address);
          return;
        }
        m.data++;
        m.sources.add(r.port);
        if (!m.silent) sock.send(Buffer.concat([Buffer.from(`${name}:`), msg]), r.port, r.address);
      });
      sock.bind(port, '127.0.0.1');
      await once(sock, 'listening');
      m.port = sock.address().port;
      m.open = true;
    },
    open: false,
    close() {
      if (!m.open) return;
      m.open = false;
      sock.close();
    },
    revive() {
      return m.bind(m.port);
    },
  };
  await m.bind(0);
  t.after(() => m.close());
  return m;
}
export type UdpMember = Awaited<ReturnType<typeof udpMember>>;

/**
 * One client socket that speaks for many clients: each datagram carries a PROXY v2 header naming
 * its client, so one socket makes as many sessions as it names (the route accepts headers from
 * 127.0.0.1). Replies come back with no header.
 */
export async function proxiedClients(t: TestContext) {
  const sock = dgram.createSocket('udp4');
  const replies: string[] = [];
  sock.on('message', (msg) => replies.push(msg.toString()));
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  t.after(() => sock.close());
  return {
    replies,
    send(port: number, client: { address: string; port: number }, data: string) {
      const header = encodeProxyV2({ transport: 'DGRAM', addresses: { source: client, destination: { address: '127.0.0.1', port } } });
      sock.send(Buffer.concat([header, Buffer.from(data)]), port, '127.0.0.1');
    },
  };
}

/** The i-th of many distinct client addresses (10.x.y.z). */
export function clientAt(i: number, port = 40000): { address: string; port: number } {
  return { address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port };
}

/** A TCP member that writes its name on accept, then echoes; counts connections. */
export async function tcpMember(t: TestContext, name: string) {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.write(name);
    s.pipe(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const stop = () => {
    for (const s of sockets) s.destroy();
    server.close();
  };
  t.after(stop);
  return { name, port, sockets, get accepted() { return accepted; }, stop };
}

/** `udp:` settings with no caps or rates in the way of many sessions from one test socket. */
export const UNLIMITED_UDP = 'udp: { maxSessions: 10000, maxSessionsPerSource: 10000, rate: { perSecond: 0 }, ratePerSource: { perSecond: 0 } }';
