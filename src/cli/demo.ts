import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import { parseConfig } from '../config/load.js';
import type { SluiceConfig } from '../config/types.js';

/**
 * The embedded default behind `npm start`: an echo service (UDP and TCP) on loopback and two
 * routes in front of it on free ports. Nothing outside the process is needed.
 */
export interface Demo {
  readonly config: SluiceConfig;
  close(): void;
}

export async function startDemoUpstreams(): Promise<Demo> {
  const udp = dgram.createSocket('udp4');
  udp.on('message', (msg, r) => udp.send(msg, r.port, r.address));
  udp.bind(0, '127.0.0.1');
  await once(udp, 'listening');
  const tcp = net.createServer({ allowHalfOpen: true }, (s) => s.pipe(s).on('error', () => s.destroy()));
  tcp.listen(0, '127.0.0.1');
  await once(tcp, 'listening');
  const udpPort = udp.address().port;
  const tcpPort = (tcp.address() as net.AddressInfo).port;
  const parsed = parseConfig(`
routes:
  demo-udp:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:${udpPort}
    udp: { idleTimeout: 30s }
  demo-tcp:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${tcpPort}
accessLog: { output: stdout }
admin: { listen: 127.0.0.1:0 }
log: { level: info }
lifecycle: { drainTimeout: 2s }
`);
  if (!parsed.ok) throw new Error('demo config is invalid');
  return {
    config: parsed.config,
    close() {
      udp.close();
      tcp.close();
    },
  };
}
