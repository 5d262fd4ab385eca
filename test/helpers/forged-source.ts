import { execFileSync } from 'node:child_process';
import type { TestContext } from 'node:test';
import { havePeer } from './peers.js';

/**
 * A client the kernel will not answer: datagrams from 127.255.255.255 (the loopback broadcast
 * address), forged on a raw socket. They reach a socket on 127.0.0.1 like any other; a reply to
 * that source through a socket without SO_BROADCAST fails with EACCES, on every send: a real,
 * repeatable send error on loopback.
 */
const FORGE = `
import socket, struct, sys
dport, sport, count, first = (int(a) for a in sys.argv[1:5])
r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for i in range(first, first + count):
    payload = (b'datagram %d ' % i).ljust(40 + i % 60, b'.')
    udp = struct.pack('!HHHH', sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, socket.inet_aton('127.255.255.255'), socket.inet_aton('127.0.0.1'))
    r.sendto(ip + udp, ('127.0.0.1', 0))
`;

/** Whether raw sockets can be opened (root, python3); same CI rule as havePeer. */
export function haveRawSockets(t: TestContext): boolean {
  if (process.getuid?.() === 0) return havePeer(t, 'python3', 'python3-minimal');
  const message = 'needs root for a raw socket (a forged broadcast source)';
  if (process.env.CI === 'true') throw new Error(`${message}: under CI nothing may skip`);
  console.warn(`\n*** SKIPPED: ${message} ***\n`);
  t.skip(message);
  return false;
}

/**
 * Sends `count` datagrams from 127.255.255.255:`sport` to 127.0.0.1:`dport`, numbered from
 * `first` (40-99 bytes each, sizes varying); returns once all are sent.
 */
export function forgeBroadcastSource(dport: number, sport: number, count: number, first = 0): void {
  execFileSync('python3', ['-c', FORGE, String(dport), String(sport), String(count), String(first)], { timeout: 10_000 });
}
