import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startNode } from '../helpers/node.js';
import { freePort, readAll, tcpServer, waitFor } from '../helpers/net.js';
import { havePeer, startPeer, tempDir } from '../helpers/peers.js';
import { decodeProxyHeader } from '../../src/protocol/proxy-protocol/index.js';

/** An upstream that parses the PROXY header in front of each connection and echoes the rest. */
async function headerUpstream(t: TestContext) {
  const headers: { source: string; port: number; version: number }[] = [];
  const up = await tcpServer(t, (s) => {
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const r = decodeProxyHeader(buf);
      if (r.kind !== 'ok') return;
      s.removeAllListeners('data');
      const a = r.header.addresses!;
      headers.push({ source: a.source.address, port: a.source.port, version: r.header.version });
      s.write(buf.subarray(r.length));
      s.pipe(s);
    });
  });
  return { ...up, headers };
}

async function waitListening(port: number): Promise<void> {
  await waitFor(() => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.on('error', () => s.destroy());
    s.on('connect', () => {
      s.destroy();
      ready.add(port);
    });
    return ready.has(port);
  }, `a listener on ${port}`, 10_000);
}
const ready = new Set<number>();

async function roundTrip(port: number, text: string): Promise<{ reply: string; localPort: number }> {
  const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  await once(s, 'connect');
  const localPort = s.localPort!;
  s.end(text);
  return { reply: (await readAll(s)).toString(), localPort };
}

test('interop: HAProxy send-proxy-v2 in front of Sluice; the upstream behind Sluice sees the original client', async (t) => {
  if (!havePeer(t, 'haproxy', 'haproxy')) return;
  const up = await headerUpstream(t);
  const n = await startNode(t, `
routes:
  web:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${up.port}
    proxyProtocol: { accept: [127.0.0.1/32], send: v1 }
`);
  const dir = await tempDir(t);
  const front = await freePort();
  await writeFile(join(dir, 'haproxy.cfg'), `global
  maxconn 100
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
listen front
  bind 127.0.0.1:${front}
  server sluice 127.0.0.1:${n.port('web')} send-proxy-v2
`);
  startPeer(t, 'haproxy', ['-f', join(dir, 'haproxy.cfg'), '-db']);
  await waitListening(front);
  const { reply, localPort } = await roundTrip(front, 'through haproxy and sluice');
  assert.equal(reply, 'through haproxy and sluice');
  assert.deepEqual(up.headers.find((h) => h.port === localPort), { source: '127.0.0.1', port: localPort, version: 1 }, 'the readiness probe connects too, so look up this client by port');
  assert.ok(n.ofType('session-started').some((e) => e.flow.client.port === localPort), 'Sluice recorded the original client, not HAProxy');
});

test('interop: Sluice send v2 in front of HAProxy accept-proxy; HAProxy forwards the original client', async (t) => {
  if (!havePeer(t, 'haproxy', 'haproxy')) return;
  const up = await headerUpstream(t);
  const dir = await tempDir(t);
  const hp = await freePort();
  await writeFile(join(dir, 'haproxy.cfg'), `global
  maxconn 100
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
listen back
  bind 127.0.0.1:${hp} accept-proxy
  server upstream 127.0.0.1:${up.port} send-proxy
`);
  startPeer(t, 'haproxy', ['-f', join(dir, 'haproxy.cfg'), '-db']);
  await waitListening(hp);
  const n = await startNode(t, `
routes:
  web:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${hp}
    proxyProtocol: { send: v2 }
`);
  const { reply, localPort } = await roundTrip(n.port('web'), 'through sluice and haproxy');
  assert.equal(reply, 'through sluice and haproxy');
  assert.deepEqual(up.headers.find((h) => h.port === localPort), { source: '127.0.0.1', port: localPort, version: 1 }, 'the readiness probe connects too, so look up this client by port');
});

test('interop: nginx stream with proxy_protocol on (v1) in front of Sluice', async (t) => {
  if (!havePeer(t, 'nginx', 'nginx-light libnginx-mod-stream')) return;
  const up = await headerUpstream(t);
  const n = await startNode(t, `
routes:
  web:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${up.port}
    proxyProtocol: { accept: [127.0.0.1/32], send: v2 }
`);
  const dir = await tempDir(t);
  const front = await freePort();
  await writeFile(join(dir, 'nginx.conf'), `load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 64; }
stream {
  server { listen 127.0.0.1:${front}; proxy_pass 127.0.0.1:${n.port('web')}; proxy_protocol on; proxy_half_close on; }
}
`);
  startPeer(t, 'nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir, '-e', join(dir, 'error.log')]);
  await waitListening(front);
  const { reply, localPort } = await roundTrip(front, 'through nginx and sluice');
  assert.equal(reply, 'through nginx and sluice');
  assert.deepEqual(up.headers.find((h) => h.port === localPort), { source: '127.0.0.1', port: localPort, version: 2 });
  assert.ok(n.ofType('session-started').some((e) => e.flow.client.port === localPort));
});
