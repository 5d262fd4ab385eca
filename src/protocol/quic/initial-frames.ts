/**
 * The frames a client may put in an Initial packet (RFC 9000 section 12.4, table 3): PADDING,
 * PING, ACK, CRYPTO and CONNECTION_CLOSE of the transport kind. Anything else in an Initial is a
 * protocol violation. Only CRYPTO data is handed on.
 */
import { QuicCursor } from './varint.js';

const PADDING = 0x00;
const PING = 0x01;
const ACK = 0x02;
const ACK_ECN = 0x03;
const CRYPTO = 0x06;
const CONNECTION_CLOSE = 0x1c;

export type InitialFrameError = 'bad-frame';

export interface CryptoSink {
  /** Returns a reason to stop walking, or undefined to go on. */
  crypto(offset: number, data: Buffer): string | undefined;
}

/** Walks the frames of one decrypted Initial payload; returns the sink's reason, `bad-frame`, or undefined. */
export function walkInitialFrames(payload: Buffer, sink: CryptoSink): string | undefined {
  if (payload.length === 0) return 'bad-frame';
  const c = new QuicCursor(payload);
  while (c.left > 0) {
    const type = c.varint();
    switch (type) {
      case PADDING:
      case PING:
        break;
      case ACK:
      case ACK_ECN: {
        c.varint(); // largest acknowledged
        c.varint(); // delay
        const ranges = c.varint();
        c.varint(); // first range
        if (ranges > c.left) return 'bad-frame';
        for (let i = 0; i < ranges && c.ok; i++) {
          c.varint(); // gap
          c.varint(); // length
        }
        if (type === ACK_ECN) {
          c.varint();
          c.varint();
          c.varint();
        }
        break;
      }
      case CRYPTO: {
        const offset = c.varint();
        const length = c.varint();
        const data = c.bytes(length);
        if (!c.ok) return 'bad-frame';
        const stop = sink.crypto(offset, data);
        if (stop !== undefined) return stop;
        break;
      }
      case CONNECTION_CLOSE: {
        c.varint(); // error code
        c.varint(); // frame type
        c.skip(c.varint()); // reason phrase
        break;
      }
      default:
        return 'bad-frame';
    }
    if (!c.ok) return 'bad-frame';
  }
  return undefined;
}
