import { U64_MAX } from './constants.js';
import { UdpexposerError } from './errors.js';
import { JsonSyntax, parseJson, type JsonValue } from './json.js';

/**
 * Token claims, as udpexposer's serde derives write and read them (protocols.md §1.5):
 *  - client → server `struct Request { nonce: Option<u64> }`: `{"nonce":null}` or `{"nonce":N}`;
 *  - server → client `enum Reply { Registered, Retry(u64) }`: `"Registered"` or `{"Retry":N}`.
 * Encoders write serde_json's compact form byte for byte. Decoders accept what serde_json
 * accepts for these types (whitespace, unknown members, a missing `nonce`, `{"Registered":null}`)
 * and refuse what it refuses (duplicates, fractions, negatives, values past u64::MAX).
 * u64 values are BigInt throughout: they routinely exceed 2^53.
 */

export interface RequestClaims {
  /** null for a plain keepalive; otherwise the echoed Retry value (or u64::MAX for stats). */
  readonly nonce: bigint | null;
}

export type ReplyClaims = { readonly kind: 'registered' } | { readonly kind: 'retry'; readonly value: bigint };

export type ClaimsDecoded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly why: string };

export function encodeRequestClaims(claims: RequestClaims): string {
  return claims.nonce === null ? '{"nonce":null}' : `{"nonce":${u64Text(claims.nonce)}}`;
}

export function encodeReplyClaims(reply: ReplyClaims): string {
  return reply.kind === 'registered' ? '"Registered"' : `{"Retry":${u64Text(reply.value)}}`;
}

export function decodeRequestClaims(text: string): ClaimsDecoded<RequestClaims> {
  return guarded(text, (v): ClaimsDecoded<RequestClaims> => {
    if (v.t !== 'obj') return fail('request claims are not an object');
    let nonce: bigint | null | undefined;
    for (const [k, m] of v.members) {
      if (k !== 'nonce') continue;
      if (nonce !== undefined) return fail('duplicate field `nonce`');
      if (m.t === 'null') nonce = null;
      else {
        const n = u64Of(m);
        if (n === undefined) return fail('`nonce` is not a u64 or null');
        nonce = n;
      }
    }
    return { ok: true, value: { nonce: nonce ?? null } };
  });
}

export function decodeReplyClaims(text: string): ClaimsDecoded<ReplyClaims> {
  return guarded(text, (v): ClaimsDecoded<ReplyClaims> => {
    if (v.t === 'str') return v.v === 'Registered' ? { ok: true, value: { kind: 'registered' } } : fail(`unknown or non-unit variant ${JSON.stringify(v.v)}`);
    if (v.t !== 'obj' || v.members.length !== 1) return fail('reply claims are neither a variant name nor a one-member object');
    const [name, inner] = v.members[0]!;
    if (name === 'Registered') return inner.t === 'null' ? { ok: true, value: { kind: 'registered' } } : fail('`Registered` carries a value');
    if (name === 'Retry') {
      const n = u64Of(inner);
      return n === undefined ? fail('`Retry` is not a u64') : { ok: true, value: { kind: 'retry', value: n } };
    }
    return fail(`unknown variant ${JSON.stringify(name)}`);
  });
}

/** A u64 as serde_json reads one: plain non-negative decimal integer within range. */
function u64Of(v: JsonValue): bigint | undefined {
  if (v.t !== 'num' || !/^(?:0|[1-9]\d*)$/.test(v.text) || v.text.length > 20) return undefined;
  const n = BigInt(v.text);
  return n <= U64_MAX ? n : undefined;
}

function u64Text(n: bigint): string {
  if (typeof n !== 'bigint' || n < 0n || n > U64_MAX) throw new UdpexposerError(`${String(n)} is not a u64`);
  return n.toString(10);
}

function fail(why: string): { ok: false; why: string } {
  return { ok: false, why };
}

function guarded<T>(text: string, read: (v: JsonValue) => ClaimsDecoded<T>): ClaimsDecoded<T> {
  let v: JsonValue;
  try {
    v = parseJson(text);
  } catch (err) {
    if (err instanceof JsonSyntax) return fail(`claims are not JSON: ${err.message}`);
    throw err;
  }
  return read(v);
}
