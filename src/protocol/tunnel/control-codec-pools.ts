import { FrameType } from './constants.js';
import { reasonPrep, u16, type BodyCodec } from './control-codec-parts.js';
import { malformed } from './wire.js';

/**
 * SERVICE_HEALTH, the agent-pool message of the control protocol (docs/tunnel-protocol.md §4,
 * "Agent pools"); a pool member's PUBLISH carries its group in the extension (publish-extension.ts).
 */

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
