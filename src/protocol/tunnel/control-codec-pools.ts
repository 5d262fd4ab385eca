import { DIGEST_BYTES, FLAG_HEALTH_REPORTED, FrameType } from './constants.js';
import type { PublishPool } from './control-messages.js';
import { fixed, reasonPrep, u16, type BodyCodec } from './control-codec-parts.js';
import { malformed, nameBytes, type WireReader, type WireWriter } from './wire.js';

/**
 * The agent-pool parts of the control protocol (docs/tunnel-protocol.md §4, "Agent pools"): the
 * optional pool trailer of PUBLISH and SERVICE_HEALTH.
 */

/** PUBLISH pool trailer: u8 flags (bit 0 health reported) | name group | 32-byte proof. Its size; validates. */
export function poolTrailerBytes(p: PublishPool | undefined): number {
  if (p === undefined) return 0;
  return 1 + nameBytes(p.group, 'pool group') + fixed(p.proof, DIGEST_BYTES, 'group proof');
}

export function writePoolTrailer(w: WireWriter, p: PublishPool | undefined): void {
  if (p === undefined) return;
  w.u8(p.healthReported ? FLAG_HEALTH_REPORTED : 0).name(p.group).bytes(p.proof);
}

/** Reads the trailer when bytes remain after the service name (a PUBLISH without one has none). */
export function readPoolTrailer(r: WireReader): { pool?: PublishPool } {
  if (r.remaining === 0) return {};
  const flags = r.u8();
  if ((flags & ~FLAG_HEALTH_REPORTED) !== 0) throw malformed(`publish pool flags ${flags} has undefined bits`);
  const group = r.name();
  return { pool: { group, proof: r.bytes(DIGEST_BYTES), healthReported: (flags & FLAG_HEALTH_REPORTED) !== 0 } };
}

const UP = 1;
const DOWN = 2;

export const POOL_CODECS: { 'service-health': BodyCodec<'service-health'> } = {
  // u16 service id | u8 state (1 up, 2 down) | u16 length | UTF-8 message
  'service-health': {
    byte: FrameType.serviceHealth,
    size: (m, p) => {
      u16(m.serviceId, 'service id');
      return 3 + reasonPrep(p, m.message);
    },
    write: (w, m, p) => void w.u16(m.serviceId).u8(m.up ? UP : DOWN).reason(p.text!),
    read: (r) => {
      const serviceId = r.u16();
      const state = r.u8();
      if (state !== UP && state !== DOWN) throw malformed(`service health state ${state} is not defined`);
      return { type: 'service-health', serviceId, up: state === UP, message: r.reason() };
    },
  },
};
