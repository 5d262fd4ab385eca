import { UdpexposerServerCore, type UdpexposerServerOptions } from '../../src/udpexposer/server-core.js';
import type { UdpexposerEvent } from '../../src/udpexposer/types.js';
import { ManualClock } from '../helpers/manual-clock.js';

export interface Sent {
  bytes: Buffer;
  port: number;
  address: string;
}

/** A server core on a ManualClock whose datagrams land in `sent`. */
export function recordingServer(opts: Partial<UdpexposerServerOptions> = {}) {
  const clock = new ManualClock(Date.UTC(2026, 0, 1, 12));
  const sent: Sent[] = [];
  const events: UdpexposerEvent[] = [];
  const core = new UdpexposerServerCore(
    { maxClients: 4, ...opts },
    {
      clock,
      send: (buf, prefix, port, address) => void sent.push({ bytes: Buffer.concat(prefix ? [prefix, buf] : [buf]), port, address }),
      onEvent: (e) => void events.push(e),
      cookieSecret: Buffer.alloc(32, 1),
    },
  );
  /** Everything sent since the last call. */
  const take = () => sent.splice(0, sent.length);
  const bytesTo = (address: string, port: number) => sent.filter((s) => s.address === address && s.port === port).reduce((n, s) => n + s.bytes.length, 0);
  return { core, clock, sent, events, take, bytesTo };
}

// Public addresses (the documentation ranges are `reserved`, which the peer policy refuses):
// the client, connectees and an attacker. Nothing is sent to them: the server core is pure.
export const CLIENT = { address: '1.1.1.10', port: 40_000 };
export const MOVED = { address: '1.1.1.11', port: 40_001 };
export const A = { address: '1.0.0.1', port: 5001 };
export const B = { address: '1.0.0.2', port: 5002 };
export const EVIL = { address: '1.0.0.66', port: 6666 };
