import dgram from 'node:dgram';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { QUIC_V1 } from '../../src/protocol/quic/initial-keys.js';
import { clientHelloMessage } from '../protocol/tls/hello-builder.js';
import { cryptoFrame, sealInitial } from '../protocol/quic/initial-builder.js';

/* Helpers of the exposures-by-name suites (expose-names*.test.ts). */

/** A UDP local service that records every datagram and answers `<tag>` + the datagram. */
export async function recorder(t: TestContext, tag: string) {
  const sock = dgram.createSocket('udp4');
  const got: Buffer[] = [];
  sock.on('message', (msg, r) => {
    got.push(msg);
    sock.send(Buffer.concat([Buffer.from(tag), msg]), r.port, r.address);
  });
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  t.after(() => sock.close());
  return { port: sock.address().port, got };
}

/** A QUIC client's first Initial for `name` (one datagram of about 1200 bytes). */
export function initialFor(name: string, dcidByte: number): Buffer {
  const frame = cryptoFrame(0, clientHelloMessage({ serverName: name, alpn: ['h3'] }));
  return sealInitial({ version: QUIC_V1, dcid: Buffer.alloc(8, dcidByte), scid: Buffer.from([dcidByte]), packetNumber: 0, payload: Buffer.concat([frame, Buffer.alloc(1160 - frame.length)]) });
}

