import fc from 'fast-check';
import { canonicalIp, formatV6, type Endpoint } from '../../../src/core/address.js';
import {
  MAX_OFFER_PEERS, MAX_REASON_BYTES, MAX_SIGNAL_BYTES, MAX_STREAM_DATA_BYTES, MAX_WINDOW_BYTES, PROXY_PROTOCOL_MODES, REFUSAL_CODES, SERVICE_TRANSPORTS,
  STREAM_RESET_CODES, type ControlMessage, type DatagramOrigin,
} from '../../../src/protocol/tunnel/index.js';

/** Arbitraries for every control message, in the canonical form the decoder returns. */

const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const nonZeroU32 = fc.integer({ min: 1, max: 0xffff_ffff });
const windowArb = fc.integer({ min: 1, max: MAX_WINDOW_BYTES });
const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max }).map((a) => Buffer.from(a));

const NAME_FIRST = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_'];
const NAME_REST = [...NAME_FIRST, '.', '-'];
export const nameArb = fc
  .tuple(fc.constantFrom(...NAME_FIRST), fc.array(fc.constantFrom(...NAME_REST), { maxLength: 63 }))
  .map(([a, rest]) => a + rest.join(''));

export const endpointArb: fc.Arbitrary<Endpoint> = fc.oneof(
  fc.tuple(fc.ipV4(), u16).map(([a, port]) => ({ address: a, port, family: 4 as const })),
  fc.tuple(fc.uint8Array({ minLength: 16, maxLength: 16 }), u16).map(([b, port]) => {
    const c = canonicalIp(formatV6(b))!;
    return { address: c.address, port, family: c.family };
  }),
);

export const originArb: fc.Arbitrary<DatagramOrigin> = fc.record({ serviceId: u16, client: endpointArb }, { noNullPrototype: true });
/** The origin of a range service's connectee: with the public port. */
const rangeOriginArb: fc.Arbitrary<DatagramOrigin> = fc.record({ serviceId: u16, client: endpointArb, port: u16 }, { noNullPrototype: true });
const LABEL = fc.stringMatching(/^[a-z0-9_-]{1,20}$/);
const serverNameArb = fc
  .tuple(fc.boolean(), fc.array(LABEL, { minLength: 1, maxLength: 5 }))
  .map(([wild, labels]) => `${wild ? '*.' : ''}${labels.join('.')}`);
/** PUBLISH's optional tail: none, a range, or a server name. */
const publishExtensionArb: fc.Arbitrary<{ ports?: number; serverName?: string }> = fc.oneof(
  fc.constant({}),
  fc.integer({ min: 2, max: 10_000 }).map((ports) => ({ ports })),
  serverNameArb.map((serverName) => ({ serverName })),
);
const reasonArb = fc.string({ unit: 'grapheme', maxLength: 100 }).filter((s) => Buffer.byteLength(s) <= MAX_REASON_BYTES && !s.includes('\uFFFD'));
const refusal = fc.constantFrom(...REFUSAL_CODES);

const rec = <T>(r: { [K in keyof T]: fc.Arbitrary<T[K]> }) => fc.record(r, { noNullPrototype: true }) as fc.Arbitrary<T>;

export const messageArb: fc.Arbitrary<ControlMessage> = fc.oneof(
  rec<ControlMessage>({ type: fc.constant('hello'), version: u16, name: nameArb, datagramKeyId: u32, resumeKeyId: u32, streamWindow: windowArb } as never),
  rec<ControlMessage>({ type: fc.constant('challenge'), nonce: bytes(32, 32) } as never),
  rec<ControlMessage>({ type: fc.constant('auth'), digest: bytes(32, 32) } as never),
  rec<ControlMessage>({
    type: fc.constant('auth-ok'), datagramKeyId: u32, resumed: fc.boolean(), streamWindow: windowArb, keepaliveIntervalMs: u32, proof: bytes(32, 32),
  } as never),
  rec<ControlMessage>({ type: fc.constant('auth-error'), code: refusal, message: reasonArb } as never),
  rec<ControlMessage>({ type: fc.constant('goaway'), code: refusal, message: reasonArb } as never),
  fc.tuple(
    rec<ControlMessage>({
      type: fc.constant('publish'), serviceId: u16, name: nameArb, transport: fc.constantFrom(...SERVICE_TRANSPORTS), remote: endpointArb,
      proxyProtocol: fc.constantFrom(...PROXY_PROTOCOL_MODES),
    } as never),
    publishExtensionArb,
  ).map(([m, ext]) => ({ ...m, ...ext }) as ControlMessage),
  rec<ControlMessage>({ type: fc.constant('publish-ok'), serviceId: u16, bound: endpointArb } as never),
  rec<ControlMessage>({ type: fc.constant('publish-error'), serviceId: u16, code: refusal, message: reasonArb } as never),
  rec<ControlMessage>({ type: fc.constant('unpublish'), serviceId: u16 } as never),
  rec<ControlMessage>({
    type: fc.constant('publish'), serviceId: u16, name: nameArb, transport: fc.constantFrom(...SERVICE_TRANSPORTS), remote: endpointArb,
    proxyProtocol: fc.constantFrom(...PROXY_PROTOCOL_MODES), pool: rec({ group: nameArb, proof: bytes(32, 32), healthReported: fc.boolean() }),
  } as never),
  rec<ControlMessage>({ type: fc.constant('service-health'), serviceId: u16, up: fc.boolean(), message: reasonArb } as never),
  rec<ControlMessage>({ type: fc.constant('stream-open'), streamId: nonZeroU32, serviceId: u16, client: endpointArb, server: endpointArb } as never),
  rec<ControlMessage>({ type: fc.constant('stream-accept'), streamId: nonZeroU32 } as never),
  rec<ControlMessage>({ type: fc.constant('stream-data'), streamId: nonZeroU32, data: bytes(1, 64) } as never),
  rec<ControlMessage>({ type: fc.constant('stream-end'), streamId: nonZeroU32 } as never),
  rec<ControlMessage>({ type: fc.constant('stream-reset'), streamId: nonZeroU32, code: fc.constantFrom(...STREAM_RESET_CODES) } as never),
  rec<ControlMessage>({ type: fc.constant('window-update'), streamId: nonZeroU32, increment: windowArb } as never),
  rec<ControlMessage>({ type: fc.constant('datagram'), tag: nonZeroU32, origin: fc.option(fc.oneof(originArb, rangeOriginArb), { nil: undefined }), payload: bytes(0, 64) } as never),
  rec<ControlMessage>({ type: fc.constant('datagram-close'), tag: nonZeroU32 } as never),
  rec<ControlMessage>({ type: fc.constant('ping'), counter: u32 } as never),
  rec<ControlMessage>({ type: fc.constant('pong'), counter: u32 } as never),
  rec<ControlMessage>({
    type: fc.constant('offer'), serviceId: u16, name: nameArb, transport: fc.constantFrom(...SERVICE_TRANSPORTS), peers: fc.array(nameArb, { maxLength: 8 }),
  } as never),
  rec<ControlMessage>({ type: fc.constant('peer-open'), tag: nonZeroU32, transport: fc.constantFrom(...SERVICE_TRANSPORTS), peer: nameArb, service: nameArb } as never),
  rec<ControlMessage>({ type: fc.constant('peer-open-ok'), tag: nonZeroU32, peerTag: nonZeroU32 } as never),
  rec<ControlMessage>({ type: fc.constant('peer-flow'), tag: nonZeroU32, origin: originArb, peer: nameArb } as never),
  rec<ControlMessage>({ type: fc.constant('peer-open-error'), tag: nonZeroU32, code: refusal, message: reasonArb } as never),
  rec<ControlMessage>({ type: fc.constant('signal'), peer: nameArb, payload: bytes(0, 64) } as never),
  rec<ControlMessage>({ type: fc.constant('signal-error'), peer: nameArb, code: refusal } as never),
);

/** Large payloads at the limits, sampled less often. */
export const bigMessageArb: fc.Arbitrary<ControlMessage> = fc.oneof(
  fc.record({ type: fc.constant('stream-data' as const), streamId: nonZeroU32, data: bytes(MAX_STREAM_DATA_BYTES - 2, MAX_STREAM_DATA_BYTES) }, { noNullPrototype: true }),
  fc.record({ type: fc.constant('signal' as const), peer: nameArb, payload: bytes(MAX_SIGNAL_BYTES - 2, MAX_SIGNAL_BYTES) }, { noNullPrototype: true }),
  fc.record(
    { type: fc.constant('offer' as const), serviceId: u16, name: nameArb, transport: fc.constantFrom(...SERVICE_TRANSPORTS), peers: fc.array(nameArb, { minLength: MAX_OFFER_PEERS, maxLength: MAX_OFFER_PEERS }) },
    { noNullPrototype: true },
  ),
);
