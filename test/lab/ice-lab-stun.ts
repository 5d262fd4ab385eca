import dgram from 'node:dgram';
import { once } from 'node:events';
import { dgramSender } from '../../src/gateway/demux.js';
import { StunBindingServer, stunRoute } from '../../src/gateway/stun-server.js';

/**
 * Sluice's STUN Binding server as a program, for the NAT lab's `pub` namespace:
 * `node ice-lab-stun.js <ip> <port>`. Prints one JSON line when it listens; runs until killed.
 */
const [address = '0.0.0.0', port = '3478'] = process.argv.slice(2);
const socket = dgram.createSocket('udp4');
const server = new StunBindingServer(dgramSender(socket));
const route = stunRoute(server);
socket.on('message', (buf, r) => route(buf, { address: r.address, port: r.port }));
socket.bind(Number(port), address);
await once(socket, 'listening');
process.stdout.write(`${JSON.stringify({ type: 'ready', address, port: Number(port) })}\n`);
process.on('SIGTERM', () => {
  socket.close();
  process.exit(0);
});
