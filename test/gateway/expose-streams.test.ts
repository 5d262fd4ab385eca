import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { decodeProxyHeader } from '../../src/protocol/proxy-protocol/index.js';
import { freePort, readAll, refusedPort, tcpConnect, tcpServer, waitFor } from '../helpers/net.js';
import { agentConfig, gatewayConfig, published, startAgent, startGateway } from './expose-helpers.js';

async function exposeTcp(t: import('node:test').TestContext, onSocket: (s: net.Socket) => void, extra = '', gatewayExtra = '') {
  const local = await tcpServer(t, onSocket);
  const gw = await startGateway(t, gatewayConfig(gatewayExtra));
  const port = await freePort();
  const { agent, seen } = await startAgent(t, agentConfig(gw, `    svc: { local: 127.0.0.1:${local.port}, remote: tcp://127.0.0.1:${port}${extra} }`));
  await published(agent);
  return { gw, agent, port, local, agentEvents: seen };
}

/** An exposed service whose local address refuses connections, and a client connected to it. */
async function exposeUnreachable(t: import('node:test').TestContext) {
  const dead = await refusedPort(t);
  const gw = await startGateway(t, gatewayConfig());
  const port = await freePort();
  const { agent } = await startAgent(t, agentConfig(gw, `    svc: { local: 127.0.0.1:${dead}, remote: tcp://127.0.0.1:${port} }`));
  await published(agent);
  return { gw, c: await tcpConnect(t, port) };
}

test('half-close through a stream: the client FIN reaches the service, which still answers', async (t) => {
  const { port, gw } = await exposeTcp(t, (s) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => s.end(`got ${Buffer.concat(chunks).toString()} then FIN`));
  });
  const c = await tcpConnect(t, port);
  c.end('request');
  assert.equal((await readAll(c)).toString(), 'got request then FIN');
  await waitFor(() => gw.gateway.agent('home')!.streams === 0, 'stream gone after both FINs');
  const ended = gw.seen.filter((e) => e.type === 'session-ended');
  assert.equal(ended.length, 1, 'the public route records the session like any route');
});

test('the service can half-close first; the client keeps sending', async (t) => {
  let late: string | undefined;
  const { port } = await exposeTcp(t, (s) => {
    s.end('banner');
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => (late = Buffer.concat(chunks).toString()));
  });
  const c = await tcpConnect(t, port);
  assert.equal((await readAll(c)).toString(), 'banner');
  c.end('late data');
  await waitFor(() => late !== undefined, 'the service got the late data and the FIN');
  assert.equal(late, 'late data');
});

test('backpressure is per stream: a client that does not read does not stall another stream', async (t) => {
  const total = 8 * 1024 * 1024;
  const block = Buffer.alloc(64 * 1024, 7);
  const { port, gw } = await exposeTcp(t, (s) => {
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        sent += block.length;
        if (!s.write(block)) return void s.once('drain', pump);
      }
      s.end();
    };
    pump();
  });
  const slow = await tcpConnect(t, port);
  slow.pause(); // never reads
  await waitFor(() => gw.gateway.agent('home')!.streams === 1, 'first stream open');
  const fast = await tcpConnect(t, port);
  let got = 0;
  fast.on('data', (c: Buffer) => (got += c.length));
  const started = Date.now();
  await once(fast, 'end');
  assert.equal(got, total, 'the reading client got everything');
  assert.ok(Date.now() - started < 10_000);
  // The stalled stream is bounded by its window (256 KiB) plus socket buffers, not by the 8 MiB sent.
  assert.ok(slow.readableLength + slow.bytesRead < total, 'the slow stream did not receive everything');
  slow.destroy();
});

test('proxyProtocol v1 and v2 tell the local service the real client', async (t) => {
  for (const version of ['v1', 'v2'] as const) {
    let header: Buffer | undefined;
    const { port } = await exposeTcp(
      t,
      (s) => {
        s.once('data', (c: Buffer) => {
          header = c;
          s.end();
        });
      },
      `, proxyProtocol: ${version}`,
    );
    const c = await tcpConnect(t, port);
    c.write('x');
    await readAll(c);
    const r = decodeProxyHeader(header!);
    assert.equal(r.kind, 'ok');
    if (r.kind !== 'ok') continue;
    assert.equal(r.header.addresses?.source.address, '127.0.0.1');
    assert.equal(r.header.addresses?.source.port, c.localPort);
    assert.equal(r.header.addresses?.destination.port, port);
  }
});

test('an unreachable local service resets the stream and the public connection closes', async (t) => {
  const { gw, c } = await exposeUnreachable(t);
  c.resume();
  await once(c, 'end');
  const err = gw.seen.find((e) => e.type === 'dial-error');
  assert.ok(err && err.type === 'dial-error');
  assert.equal(err.code, 'SLUICE_ERR_DIAL_FAILED');
  assert.match(err.message, /refused/);
});

test('a client whose first bytes left before the agent found its service unreachable is reset, not closed', async (t) => {
  const { gw, c } = await exposeUnreachable(t);
  let error: (Error & { code?: string }) | undefined;
  c.on('error', (e) => (error = e));
  c.on('end', () => assert.fail('a FIN would look like the service closing after the request'));
  c.write('request that reaches no service');
  await new Promise((r) => c.once('close', r));
  assert.equal(error?.code, 'ECONNRESET');
  await waitFor(() => gw.seen.some((e) => e.type === 'dial-error'), 'dial-error recorded');
  assert.ok(!gw.seen.some((e) => e.type === 'session-started'), 'no session started');
  await waitFor(() => gw.gateway.agent('home')!.streams === 0, 'the stream is gone');
});

test('the public listener applies the ACL like any route', async (t) => {
  const { port, gw } = await exposeTcp(t, (s) => s.pipe(s), '', '  services:\n    acl: { deny: [127.0.0.0/8] }\n');
  const c = net.connect(port, '127.0.0.1');
  c.on('error', () => {});
  await once(c, 'close');
  const rejected = gw.seen.find((e) => e.type === 'session-rejected');
  assert.ok(rejected && rejected.type === 'session-rejected' && rejected.reason === 'acl-cidr');
  assert.equal(gw.gateway.agent('home')!.streams, 0, 'no stream was opened for a refused client');
});
