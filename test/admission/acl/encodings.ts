import type { EmbeddedForm } from '../../../src/core/embedded-ipv4.js';
import { formatIpv4 } from '../../../src/core/ip-value.js';

/** Free bits an encoding may carry besides the IPv4 address (subnet, interface id, Teredo server). */
export interface Filler {
  readonly a: number; // 16 bits
  readonly b: number; // 16 bits
  readonly c: number; // 16 bits
  readonly d: number; // 32 bits
}

export const ZERO_FILL: Filler = { a: 0, b: 0, c: 0, d: 0 };

const h = (n: number) => (n & 0xffff).toString(16);
const hi = (v4: number) => h(v4 >>> 16);
const lo = (v4: number) => h(v4);

/**
 * The IPv6 spellings of IPv4 address `v4` that deny rules must catch, each as the client text
 * a socket or a PROXY header could report. Spellings vary (dotted tail, hex groups, upper case,
 * no compression) so the parser's paths are covered too.
 */
export function ipv6Encodings(v4: number, f: Filler = ZERO_FILL): Array<{ form: EmbeddedForm; text: string }> {
  const dotted = formatIpv4(v4);
  const out: Array<{ form: EmbeddedForm; text: string }> = [
    { form: 'mapped', text: `::ffff:${dotted}` },
    { form: 'mapped', text: `::FFFF:${hi(v4)}:${lo(v4)}`.toUpperCase() },
    { form: 'mapped', text: `0:0:0:0:0:ffff:${dotted}` },
    { form: 'translated', text: `::ffff:0:${dotted}` },
    { form: 'nat64', text: `64:ff9b::${dotted}` },
    { form: 'nat64', text: `64:ff9b::${hi(v4)}:${lo(v4)}` },
    { form: 'nat64', text: `0064:FF9B:0000:0000:0000:0000:${hi(v4)}:${lo(v4)}` },
    // RFC 8215 local-use, with each RFC 6052 §2.2 prefix length the operator may pick.
    { form: 'nat64-local', text: `64:ff9b:1:${h(f.a)}:${h(f.b)}:${h(f.c)}:${dotted}` }, // /96
    { form: 'nat64-local', text: `64:ff9b:1:${hi(v4)}:${h((v4 >>> 8) & 0xff)}:${h((v4 & 0xff) << 8)}::` }, // /48
    { form: 'nat64-local', text: `64:ff9b:1:${h(((f.a & 0xff) << 8) | (v4 >>> 24))}:${h((v4 >>> 16) & 0xff)}:${lo(v4)}::` }, // /56
    { form: 'nat64-local', text: `64:ff9b:1:${h(f.a)}:${h(v4 >>> 24)}:${h(v4 >>> 8)}:${h((v4 & 0xff) << 8)}:0` }, // /64
    { form: '6to4', text: `2002:${hi(v4)}:${lo(v4)}::` },
    { form: '6to4', text: `2002:${hi(v4)}:${lo(v4)}:${h(f.a)}:${h(f.b)}:${h(f.c)}:${h(f.d >>> 16)}:${h(f.d)}` },
    // Teredo: server IPv4 in bits 32-63, flags, obfuscated port, client IPv4 XOR 0xffffffff.
    { form: 'teredo', text: `2001:0:${h(f.a)}:${h(f.b)}:${h(f.c)}:${h(f.d)}:${h(~v4 >>> 16)}:${h(~v4)}` },
  ];
  if (v4 > 1) {
    out.push({ form: 'compatible', text: `::${dotted}` }, { form: 'compatible', text: `::${hi(v4)}:${lo(v4)}` });
  }
  return out;
}
