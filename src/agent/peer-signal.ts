import { z } from 'zod';

/**
 * The SIGNAL payloads agents exchange through the gateway to set up a direct path (docs/connect.md):
 * UTF-8 JSON, validated here before anything reads it. The gateway forwards them between allowed
 * agents only, over TLS on both legs, so they are authenticated and cannot be replayed across
 * connections; `attempt` ties every message to one ICE attempt, so a late candidate of an old attempt
 * is discarded.
 *
 * - offer:     the connecting side starts an attempt (ICE credentials, its datagram key for the direct path).
 * - answer:    the other side's credentials and key for the same attempt.
 * - candidate: one trickled candidate (`candidate:` SDP attribute text).
 * - end:       end-of-candidates.
 * - close:     the attempt is over (idle, or the sender gave up); the receiver tears its side down.
 */

const attempt = z.string().regex(/^[0-9a-f]{8,32}$/);
const credentials = { ufrag: z.string().min(4).max(256), pwd: z.string().min(22).max(256) };
/** The key the sender opens direct datagrams with (the receiver seals to it): 32 bytes, base64. */
const key = { keyId: z.number().int().min(1).max(0xffff_ffff), key: z.string().regex(/^[A-Za-z0-9+/]{43}=$/) };

const schema = z.discriminatedUnion('kind', [
  z.strictObject({ v: z.literal(1), kind: z.literal('offer'), attempt, ...credentials, ...key }),
  z.strictObject({ v: z.literal(1), kind: z.literal('answer'), attempt, ...credentials, ...key }),
  z.strictObject({ v: z.literal(1), kind: z.literal('candidate'), attempt, candidate: z.string().min(1).max(512) }),
  z.strictObject({ v: z.literal(1), kind: z.literal('end'), attempt }),
  z.strictObject({ v: z.literal(1), kind: z.literal('close'), attempt }),
]);

export type PeerSignal = z.output<typeof schema>;

/** Only the fields of one kind; `v` is added on encoding. */
export type PeerSignalBody = PeerSignal extends infer S ? (S extends PeerSignal ? Omit<S, 'v'> : never) : never;

export function encodePeerSignal(s: PeerSignalBody): Buffer {
  return Buffer.from(JSON.stringify({ v: 1, ...s }));
}

/** The signal, or a one-line reason it is not one. Never throws. */
export function decodePeerSignal(payload: Buffer): PeerSignal | string {
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch {
    return 'not JSON';
  }
  const r = schema.safeParse(json);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  return issue ? `${issue.path.join('.') || 'payload'}: ${issue.message}` : 'invalid';
}
