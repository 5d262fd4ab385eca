import { parseCidr, type Cidr } from '../core/cidr.js';
import { CidrSet } from '../core/cidr-set.js';
import { parseIpValue } from '../core/ip-value.js';

/**
 * Which senders may put a PROXY header in front of their traffic (`proxyProtocol.accept`).
 * Addresses are canonical (mapped IPv4 already plain IPv4), so an `::ffff:` spelling of a trusted
 * IPv4 sender is trusted and an IPv6 address embedding one is not.
 */
export class ProxyTrust {
  readonly #set: CidrSet;

  constructor(accept: readonly string[]) {
    this.#set = new CidrSet(accept.map((t) => parseCidr(t) as Cidr));
  }

  get empty(): boolean {
    return this.#set.size === 0;
  }

  trusts(address: string): boolean {
    const ip = parseIpValue(address);
    return ip !== undefined && this.#set.match(ip) !== undefined;
  }
}

const V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
const V1_SIGNATURE = Buffer.from('PROXY ', 'latin1');

/**
 * Whether `buf` starts with a PROXY signature: 'yes', 'no', or 'maybe' when it is a strict prefix
 * of one and more bytes are needed to tell.
 */
export function startsWithProxySignature(buf: Buffer): 'yes' | 'no' | 'maybe' {
  for (const sig of [V2_SIGNATURE, V1_SIGNATURE]) {
    const n = Math.min(sig.length, buf.length);
    if (buf.compare(sig, 0, n, 0, n) !== 0) continue;
    return n === sig.length ? 'yes' : 'maybe';
  }
  return 'no';
}
