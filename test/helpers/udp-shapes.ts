import dgram from 'node:dgram';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { waitFor } from './net.js';

/**
 * UDP upstreams and clients with the byte shapes of real protocols, for the reply budget tests
 * (docs/security.md): an amplifier, DNS-like request/response, and a WireGuard-like tunnel
 * carrying an ack-clocked bulk download (TCP inside). Sizes are the real ones on the wire:
 * WireGuard handshake initiation 148 B and response 92 B; a data packet for a 1420-byte inner
 * MTU is 1452 B (16 header + 1420 + 16 tag); an inner IPv4 TCP ACK with timestamps (52 B,
 * padded to 64) is 96 B.
 */

async function bound(t: TestContext): Promise<dgram.Socket> {
  const sock = dgram.createSocket('udp4');
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  t.after(() => {
    try {
      sock.close();
    } catch {
      /* closed */
    }
  });
  return sock;
}

/** Answers every datagram with `count` datagrams of `size` bytes (an upstream that amplifies). */
export async function amplifyingUpstream(t: TestContext, count: number, size: number) {
  const sock = await bound(t);
  let sent = 0;
  sock.on('message', (_msg, r) => {
    for (let i = 0; i < count; i++) sock.send(Buffer.alloc(size, i), r.port, r.address, () => void sent++);
  });
  return { port: sock.address().port, get sent() { return sent; } };
}

/** DNS-like: a query names its answer size in its first two bytes; the answer echoes the query id (bytes 2-3). */
export async function dnsLikeUpstream(t: TestContext) {
  const sock = await bound(t);
  sock.on('message', (q, r) => {
    if (q.length < 4) return;
    const answer = Buffer.alloc(q.readUInt16BE(0), 0x61);
    q.copy(answer, 0, 0, 4);
    sock.send(answer, r.port, r.address);
  });
  return { port: sock.address().port };
}

export function dnsQuery(id: number, querySize: number, answerSize: number): Buffer {
  const q = Buffer.alloc(querySize, 0x71);
  q.writeUInt16BE(answerSize, 0);
  q.writeUInt16BE(id & 0xffff, 2);
  return q;
}

/** Sizes on the wire; syn is an inner SYN or SYN-ACK (60 B, padded to 64 + 32), request an inner GET (~170 B + 32, padded). */
export const WG = { initiation: 148, response: 92, syn: 112, data: 1452, ack: 96, request: 208 } as const;

/**
 * The server end of a WireGuard-like tunnel with a bulk TCP download inside: the WireGuard
 * handshake, the inner TCP handshake, then a request naming `packets`, answered the way TCP
 * sends: an initial window of 10 packets of 1452 bytes, slow start (the window grows by what
 * each ack acknowledges) up to `maxWindow`, each 96-byte ack (a cumulative count) releasing the
 * next ones. Nothing is retransmitted: a reply the relay drops stalls the download, which the
 * client sees.
 */
export async function wireguardLikeUpstream(t: TestContext, maxWindow = 64) {
  const sock = await bound(t);
  const flows = new Map<string, { total: number; next: number; acked: number; cwnd: number }>();
  const pump = (key: string, port: number) => {
    const f = flows.get(key)!;
    while (f.next < f.total && f.next - f.acked < f.cwnd) {
      const p = Buffer.alloc(WG.data, 0x44);
      p[0] = 4;
      p.writeUInt32BE(f.next++, 4);
      sock.send(p, port, '127.0.0.1');
    }
  };
  sock.on('message', (m, r) => {
    const key = `${r.address}|${r.port}`;
    if (m[0] === 1 && m.length === WG.initiation) {
      sock.send(Buffer.alloc(WG.response, 2), r.port, r.address);
    } else if (m[0] === 4 && m.length === WG.syn) {
      sock.send(Buffer.alloc(WG.syn, 3), r.port, r.address); // the inner SYN-ACK
    } else if (m[0] === 4 && m.length === WG.request) {
      flows.set(key, { total: m.readUInt32BE(4), next: 0, acked: 0, cwnd: 10 });
      pump(key, r.port);
    } else if (m[0] === 4 && m.length === WG.ack) {
      const f = flows.get(key);
      if (!f) return;
      const n = m.readUInt32BE(4);
      if (n > f.acked) {
        f.cwnd = Math.min(maxWindow, f.cwnd + n - f.acked);
        f.acked = n;
      }
      pump(key, r.port);
    }
  });
  return { port: sock.address().port };
}

/**
 * The client end: handshake, request `packets`, ack every `ackEvery` data packets (2 is TCP's
 * delayed ACK; more is a stretch ACK, as GRO makes at high rates), after 5 ms of silence, and
 * once at the end. Resolves with the packets and bytes
 * received, or rejects if the download stalls for `stallMs`.
 */
export async function wireguardLikeDownload(t: TestContext, port: number, packets: number, ackEvery = 2, stallMs = 3000, host = '127.0.0.1') {
  const sock = await bound(t);
  let received = 0;
  let bytes = 0;
  let sentBytes = 0;
  let handshake = false;
  let synAck = false;
  let delayed: NodeJS.Timeout | undefined;
  let last = Date.now();
  const send = (b: Buffer) => {
    sentBytes += b.length;
    sock.send(b, port, host);
  };
  const ack = (n: number) => {
    const a = Buffer.alloc(WG.ack, 4);
    a.writeUInt32BE(n, 4);
    send(a);
  };
  sock.on('message', (m) => {
    last = Date.now();
    bytes += m.length;
    if (m[0] === 2) {
      handshake = true;
      return;
    }
    if (m[0] === 3) {
      synAck = true;
      return;
    }
    received++;
    if (received % ackEvery === 0 || received === packets) {
      clearTimeout(delayed);
      delayed = undefined;
      ack(received);
    } else {
      // TCP's delayed-ACK timer: what is left unacked is acked shortly anyway.
      delayed ??= setTimeout(() => {
        delayed = undefined;
        ack(received);
      }, 5);
    }
  });
  t.after(() => clearTimeout(delayed));
  send(Buffer.alloc(WG.initiation, 1).fill(1, 0, 1));
  await waitFor(() => handshake, 'handshake response');
  send(Buffer.alloc(WG.syn, 4));
  await waitFor(() => synAck, 'inner SYN-ACK');
  const req = Buffer.alloc(WG.request, 4);
  req.writeUInt32BE(packets, 4);
  send(req);
  const started = Date.now();
  await new Promise<void>((resolve, reject) => {
    const tick = setInterval(() => {
      if (received >= packets) {
        clearInterval(tick);
        resolve();
      } else if (Date.now() - last > stallMs) {
        clearInterval(tick);
        reject(new Error(`download stalled at ${received}/${packets} packets`));
      }
    }, 10);
  });
  return { received, bytes, sentBytes, ms: Date.now() - started };
}
