import type { IpValue } from './ip-value.js';

/** The IPv6 address forms that carry an IPv4 address, named for denial details. */
export type EmbeddedForm =
  | 'mapped' //        ::ffff:0:0/96, RFC 4291 §2.5.5.2
  | 'compatible' //    ::/96 except :: and ::1, RFC 4291 §2.5.5.1 (deprecated)
  | 'translated' //    ::ffff:0:0:0/96, RFC 2765 §2.1 (SIIT, obsoleted)
  | 'nat64' //         64:ff9b::/96, RFC 6052 §2.1
  | 'nat64-local' //   64:ff9b:1::/48, RFC 8215
  | '6to4' //          2002::/16, RFC 3056 §2
  | 'teredo'; //       2001::/32, RFC 4380 §4

export interface EmbeddedIpv4 {
  readonly form: EmbeddedForm;
  /** The embedded IPv4 address as a uint32. */
  readonly v4: number;
}

const NONE: readonly EmbeddedIpv4[] = Object.freeze([]);

/**
 * Every IPv4 address that the IPv6 address `ip` embeds, for deny checks only: a deny rule on an
 * IPv4 network must also refuse the IPv6 spellings of its addresses, which `net.BlockList` did
 * not do for compatible, NAT64 and 6to4 forms (field/threats-and-tests.md §3.1). Allow checks must
 * not use this: an IPv6 source must not borrow an allowed IPv4 address.
 *
 * The NAT64 local-use block (RFC 8215) is carved into prefixes of /48 to /96 chosen by the
 * operator, and RFC 6052 §2.2 places the IPv4 bits differently for each length; all placements
 * are returned (for /48, /56 and /64 only when the reserved "u" octet is zero, as §2.2 requires).
 * The Teredo server address (bits 32-63) is not the client and is not returned.
 * Returns a shared empty array for IPv4 and for IPv6 without an embedded address.
 */
export function embeddedIpv4(ip: IpValue): readonly EmbeddedIpv4[] {
  if (ip.family !== 6) return NONE;
  const [w0, w1, w2, w3] = ip.words as [number, number, number, number];
  if (w0 === 0 && w1 === 0) {
    if (w2 === 0xffff) return [{ form: 'mapped', v4: w3 }];
    if (w2 === 0 && w3 > 1) return [{ form: 'compatible', v4: w3 }];
    if (w2 === 0xffff0000) return [{ form: 'translated', v4: w3 }];
    return NONE;
  }
  if (w0 >>> 16 === 0x2002) return [{ form: '6to4', v4: (((w0 & 0xffff) << 16) | (w1 >>> 16)) >>> 0 }];
  if (w0 === 0x20010000) return [{ form: 'teredo', v4: ~w3 >>> 0 }];
  if (w0 === 0x0064ff9b) {
    if (w1 === 0 && w2 === 0) return [{ form: 'nat64', v4: w3 }];
    if (w1 >>> 16 === 1) {
      const out: EmbeddedIpv4[] = [{ form: 'nat64-local', v4: w3 }]; // /96
      if (w2 >>> 24 === 0) {
        out.push(
          { form: 'nat64-local', v4: (((w1 & 0xffff) << 16) | ((w2 >>> 8) & 0xffff)) >>> 0 }, // /48
          { form: 'nat64-local', v4: (((w1 & 0xff) << 24) | (w2 & 0xffffff)) >>> 0 }, //          /56
          { form: 'nat64-local', v4: (((w2 & 0xffffff) << 8) | (w3 >>> 24)) >>> 0 }, //           /64
        );
      }
      return out;
    }
  }
  return NONE;
}
