/**
 * What a datagram on a shared UDP socket is, from its first byte alone (RFC 7983 §7, RFC 8656
 * §12): 0-3 STUN, 64-79 TURN ChannelData, everything else the application's. Sluice's own
 * datagram framings keep their first byte outside both ranges so they can share a socket with
 * STUN and TURN. An empty datagram is the application's (udpexposer keepalives are empty).
 * This only routes; each receiver still validates what it gets.
 */
export type DatagramKind = 'stun' | 'channel-data' | 'application';

export function classifyDatagram(buf: Uint8Array): DatagramKind {
  if (buf.length === 0) return 'application';
  const b = buf[0]!;
  if (b <= 3) return 'stun';
  if (b >= 64 && b <= 79) return 'channel-data';
  return 'application';
}
