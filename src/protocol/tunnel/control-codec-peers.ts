import { FrameType, MAX_OFFER_PEERS, MAX_SIGNAL_BYTES } from './constants.js';
import { REFUSAL_CODES, SERVICE_TRANSPORTS } from './control-messages.js';
import { enumByte, enumRead, reasonPrep, refusalByte, sized, tagOk, u16, type BodyCodec } from './control-codec-parts.js';
import { TunnelError } from './errors.js';
import { encodeOrigin, originBytes, readOrigin, writeOrigin } from './origin-block.js';
import { malformed, nameBytes } from './wire.js';

/** Body codecs of the peer messages: OFFER, PEER_OPEN*, SIGNAL* (docs/tunnel-protocol.md §8). */
export const PEER_CODECS: {
  offer: BodyCodec<'offer'>;
  'peer-open': BodyCodec<'peer-open'>;
  'peer-open-ok': BodyCodec<'peer-open-ok'>;
  'peer-open-error': BodyCodec<'peer-open-error'>;
  'peer-flow': BodyCodec<'peer-flow'>;
  signal: BodyCodec<'signal'>;
  'signal-error': BodyCodec<'signal-error'>;
} = {
  // u16 service id | u8 transport | name service | u8 count | count x name peer
  offer: {
    byte: FrameType.offer,
    size: (m) => {
      u16(m.serviceId, 'service id');
      if (m.peers.length > MAX_OFFER_PEERS) throw new TunnelError('bad-value', `an offer names at most ${MAX_OFFER_PEERS} peers, got ${m.peers.length}`);
      let n = 4 + nameBytes(m.name, 'service name');
      for (const peer of m.peers) n += nameBytes(peer, 'offer peer');
      return n;
    },
    write: (w, m) => {
      w.u16(m.serviceId).u8(enumByte(SERVICE_TRANSPORTS, m.transport, 'transport')).name(m.name).u8(m.peers.length);
      for (const peer of m.peers) w.name(peer);
    },
    read: (r) => {
      const serviceId = r.u16();
      const transport = enumRead(SERVICE_TRANSPORTS, r.u8(), 'transport');
      const name = r.name();
      const count = r.u8();
      const peers: string[] = [];
      for (let i = 0; i < count; i++) peers.push(r.name());
      return { type: 'offer', serviceId, name, transport, peers };
    },
  },
  // u32 tag | u8 transport | name peer | name service
  'peer-open': {
    byte: FrameType.peerOpen,
    size: (m) => {
      tagOk(m.tag);
      return 5 + nameBytes(m.peer, 'peer') + nameBytes(m.service, 'peer service');
    },
    write: (w, m) => void w.u32(m.tag).u8(enumByte(SERVICE_TRANSPORTS, m.transport, 'transport')).name(m.peer).name(m.service),
    read: (r) => {
      const tag = r.u32();
      if (tag === 0) throw malformed('peer tag 0 is reserved');
      const transport = enumRead(SERVICE_TRANSPORTS, r.u8(), 'transport');
      const peer = r.name();
      return { type: 'peer-open', tag, transport, peer, service: r.name() };
    },
  },
  // u32 tag | u32 peer tag
  'peer-open-ok': {
    byte: FrameType.peerOpenOk,
    size: (m) => {
      tagOk(m.tag);
      tagOk(m.peerTag);
      return 8;
    },
    write: (w, m) => void w.u32(m.tag).u32(m.peerTag),
    read: (r) => {
      const tag = r.u32();
      const peerTag = r.u32();
      if (tag === 0 || peerTag === 0) throw malformed('peer tag 0 is reserved');
      return { type: 'peer-open-ok', tag, peerTag };
    },
  },
  // u32 tag | origin block (u16 service id | endpoint client) | name peer
  'peer-flow': {
    byte: FrameType.peerFlow,
    size: (m, p) => {
      tagOk(m.tag);
      if (m.origin.port !== undefined) throw new TunnelError('bad-value', 'peer-flow: a peer flow reaches one port; its origin carries no public port');
      return 4 + originBytes((p.origin = encodeOrigin(m.origin))) + nameBytes(m.peer, 'peer');
    },
    write: (w, m, p) => {
      w.u32(m.tag);
      writeOrigin(w, p.origin!);
      w.name(m.peer);
    },
    read: (r) => {
      const tag = r.u32();
      if (tag === 0) throw malformed('connectee tag 0 is reserved');
      const origin = readOrigin(r);
      return { type: 'peer-flow', tag, origin, peer: r.name() };
    },
  },
  // u32 tag | u8 code | u16 len | UTF-8 message
  'peer-open-error': {
    byte: FrameType.peerOpenError,
    size: (m, p) => {
      tagOk(m.tag);
      return 5 + reasonPrep(p, m.message);
    },
    write: (w, m, p) => void w.u32(m.tag).u8(refusalByte(m.code)).reason(p.text!),
    read: (r) => {
      const tag = r.u32();
      if (tag === 0) throw malformed('peer tag 0 is reserved');
      const code = enumRead(REFUSAL_CODES, r.u8(), 'refusal code');
      return { type: 'peer-open-error', tag, code, message: r.reason() };
    },
  },
  // name peer | payload (0 to 16384 bytes)
  signal: {
    byte: FrameType.signal,
    size: (m) => nameBytes(m.peer, 'signal peer') + sized(m.payload, 0, MAX_SIGNAL_BYTES, 'signal payload'),
    write: (w, m) => void w.name(m.peer).bytes(m.payload),
    read: (r) => {
      const peer = r.name();
      if (r.remaining > MAX_SIGNAL_BYTES) throw malformed(`signal payload of ${r.remaining} bytes exceeds ${MAX_SIGNAL_BYTES}`);
      return { type: 'signal', peer, payload: r.rest() };
    },
  },
  // u8 code | name peer
  'signal-error': {
    byte: FrameType.signalError,
    size: (m) => 1 + nameBytes(m.peer, 'signal peer'),
    write: (w, m) => void w.u8(refusalByte(m.code)).name(m.peer),
    read: (r) => {
      const code = enumRead(REFUSAL_CODES, r.u8(), 'refusal code');
      return { type: 'signal-error', peer: r.name(), code };
    },
  },
};
