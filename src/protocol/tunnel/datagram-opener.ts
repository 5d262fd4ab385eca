import { defaultAead, type Aead } from './aead.js';
import { AEAD_KEY_BYTES, DATAGRAM_HEADER_BYTES, DEFAULT_REPLAY_WINDOW, FLAG_ORIGIN_PORT, MAX_AUTH_FAILURES_PER_KEY } from './constants.js';
import type { DatagramOrigin } from './control-messages.js';
import { readUnverifiedHeader, type DatagramHeader } from './datagram-header.js';
import { newNonceBuffer, setNonceSequence } from './datagram-nonce.js';
import { TunnelError } from './errors.js';
import type { Direction } from './key-schedule.js';
import { readOrigin } from './origin-block.js';
import { ReplayWindow } from './replay-window.js';
import { WireReader, checkUint } from './wire.js';

export interface OpenerOptions {
  /** 32-byte receive key from `exportDatagramKeys(...).receive`; copied. */
  readonly key: Uint8Array;
  /** The direction of the datagrams this opener receives. */
  readonly direction: Direction;
  /** This end's own key id (sent in HELLO or AUTH_OK); datagrams carrying another are refused. */
  readonly keyId: number;
  /** Replay window in datagrams (multiple of 32). Default DEFAULT_REPLAY_WINDOW (2048). */
  readonly replayWindow?: number;
  /** Default: the fastest available (aead.ts). */
  readonly aead?: Aead;
}

/** Why a datagram was dropped: a closed set for per-reason counters. Drops are silent on the wire. */
export type DatagramRejectReason =
  /** Not a tunnel datagram, too short, or header rules broken (checked before any crypto). */
  | 'malformed'
  /** The key id is not this session's. */
  | 'unknown-key'
  /** Sequence at or below the window's lower edge. */
  | 'too-old'
  /** Sequence already accepted. */
  | 'replayed'
  /** The AEAD tag did not verify: forged, damaged, or sealed under another key. */
  | 'auth-failed'
  /** Authentic, but the plaintext does not follow the layout (a bug at the peer). */
  | 'bad-plaintext'
  /** The key has seen MAX_AUTH_FAILURES_PER_KEY forgeries and is retired: reconnect for new keys. */
  | 'key-exhausted';

/** A verified datagram. Only these fields may be trusted, and only because the tag verified. */
export type OpenedDatagram =
  | {
      readonly kind: 'data';
      readonly sequence: number;
      /**
       * True when this datagram raised the highest accepted sequence. Move the peer's address
       * (NAT rebinding) only on such datagrams, so a delayed datagram from an old address
       * cannot move it back.
       */
      readonly newest: boolean;
      readonly tag: number;
      readonly origin: DatagramOrigin | undefined;
      /** The application payload (a fresh buffer, or a view into one). */
      readonly payload: Buffer;
    }
  | { readonly kind: 'keepalive' | 'keepalive-ack'; readonly sequence: number; readonly newest: boolean; readonly counter: number };

export type OpenResult = { readonly ok: true; readonly datagram: OpenedDatagram } | { readonly ok: false; readonly reason: DatagramRejectReason };

const rejected = (reason: DatagramRejectReason): OpenResult => ({ ok: false, reason });
const REJECT: { readonly [R in DatagramRejectReason]: OpenResult } = {
  malformed: rejected('malformed'),
  'unknown-key': rejected('unknown-key'),
  'too-old': rejected('too-old'),
  replayed: rejected('replayed'),
  'auth-failed': rejected('auth-failed'),
  'bad-plaintext': rejected('bad-plaintext'),
  'key-exhausted': rejected('key-exhausted'),
};

/**
 * Verifies and decrypts datagrams for one direction of one tunnel session, with the replay window.
 * `open` never throws on any input: every failure is a reject reason. Cheap checks (type, length,
 * flags, key id, window) run before the AEAD, so garbage and replays cost no crypto; the window is
 * updated only after the tag verified.
 */
export class DatagramOpener {
  readonly #key: Buffer;
  readonly #keyId: number;
  readonly #nonce: Buffer;
  readonly #window: ReplayWindow;
  readonly #aead: Aead;
  #authFailures = 0;

  constructor(opts: OpenerOptions) {
    if (opts.key.length !== AEAD_KEY_BYTES) throw new TunnelError('bad-key', `datagram key must be ${AEAD_KEY_BYTES} bytes, got ${opts.key.length}`);
    checkUint(opts.keyId, 0xffff_ffff, 'key id');
    this.#key = Buffer.from(opts.key);
    this.#keyId = opts.keyId;
    this.#nonce = newNonceBuffer(opts.direction);
    this.#window = new ReplayWindow(opts.replayWindow ?? DEFAULT_REPLAY_WINDOW);
    this.#aead = opts.aead ?? defaultAead;
  }

  /** Datagrams whose tag failed to verify under this key. */
  get authFailures(): number {
    return this.#authFailures;
  }

  /** Highest sequence accepted, -1 before the first. */
  get highestSequence(): number {
    return this.#window.top;
  }

  open(buf: Buffer): OpenResult {
    const h = readUnverifiedHeader(buf);
    if (!h) return REJECT.malformed;
    if (h.keyId !== this.#keyId) return REJECT['unknown-key'];
    if (this.#authFailures >= MAX_AUTH_FAILURES_PER_KEY) return REJECT['key-exhausted'];
    const verdict = this.#window.check(h.sequence);
    if (verdict !== 'ok') return REJECT[verdict];

    setNonceSequence(this.#nonce, h.sequence);
    const plain = this.#aead.open(buf.subarray(DATAGRAM_HEADER_BYTES), buf.subarray(0, DATAGRAM_HEADER_BYTES), this.#nonce, this.#key);
    if (!plain) {
      this.#authFailures++;
      return REJECT['auth-failed'];
    }

    const datagram = openedDatagram(h, plain, h.sequence > this.#window.top);
    if (!datagram) return REJECT['bad-plaintext'];
    this.#window.accept(h.sequence);
    return { ok: true, datagram };
  }
}

/**
 * A result for rejection `reason` (shared objects: results carry no per-datagram state when they
 * fail).
 */
export function rejectedDatagram(reason: DatagramRejectReason): OpenResult {
  return REJECT[reason];
}

/**
 * The datagram whose header is `h` and whose verified plaintext is `plain`, or undefined when the
 * plaintext does not follow the layout ('bad-plaintext'). Used by every opener (also the one in
 * the native batch), so they read plaintexts the same way.
 */
export function openedDatagram(h: DatagramHeader, plain: Buffer, newest: boolean): OpenedDatagram | undefined {
  if (h.kind === 'data') {
    let origin: DatagramOrigin | undefined;
    let payload = plain;
    if (h.flags !== 0) {
      try {
        const r = new WireReader(plain, 0, plain.length, 'datagram origin');
        origin = readOrigin(r, (h.flags & FLAG_ORIGIN_PORT) !== 0);
        payload = plain.subarray(plain.length - r.remaining);
      } catch {
        return undefined;
      }
    }
    return { kind: 'data', sequence: h.sequence, newest, tag: h.tag, origin, payload };
  }
  if (plain.length !== 4) return undefined;
  return { kind: h.kind, sequence: h.sequence, newest, counter: plain.readUInt32BE(0) };
}
