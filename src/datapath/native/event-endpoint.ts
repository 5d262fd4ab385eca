import { formatV6Groups, type Endpoint } from '../../core/address.js';

// An address in the stream engine's event records (native/src/stream.h lays them out): [family,
// port, then one IPv4 word or four IPv6 words of two groups each].

/** The text of the last IPv4 address formatted: connections from one client share it. */
let lastV4 = -1;
let lastV4Text = '';

/**
 * The endpoint at `o` of an event record. The port is read as an integer (`| 0`): a value read from
 * a Float64Array is a double to V8, and one double stored in `port` turns that field of every
 * `{ address, port, family }` in the process into a boxed number (16 bytes more per endpoint, two
 * per idle UDP session at gateway and agent).
 */
export function endpointAt(ev: Float64Array, o: number): Endpoint {
  const port = ev[o + 1]! | 0;
  if (ev[o] === 4) {
    const a = ev[o + 2]!;
    if (a !== lastV4) {
      lastV4 = a;
      lastV4Text = `${(a >>> 24) & 255}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
    }
    return { address: lastV4Text, port, family: 4 };
  }
  const g: number[] = [];
  for (let i = 0; i < 4; i++) {
    const w = ev[o + 2 + i]!;
    g.push((w >>> 16) & 0xffff, w & 0xffff);
  }
  return { address: formatV6Groups(g), port, family: 6 };
}
