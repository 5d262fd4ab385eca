import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CrowdsecPullError, pullDecisionStream } from '../../../src/admission/crowdsec/lapi-stream.js';
import { systemClock } from '../../../src/core/clock.js';

/** A LAPI that answers every pull with `body`, chunked (no length) or with a Content-Length. */
async function lapi(t: import('node:test').TestContext, body: string, chunked: boolean) {
  let sent = 0;
  const server = http.createServer((_req, res) => {
    res.writeHead(200, chunked ? { 'content-type': 'application/json' } : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    // In 1 KB pieces, so a reader that stops early is seen to stop.
    let at = 0;
    const next = () => {
      if (at >= body.length) return void res.end();
      const piece = body.slice(at, at + 1024);
      at += 1024;
      sent += piece.length;
      if (res.write(piece)) setImmediate(next);
      else res.once('drain', next);
    };
    res.on('error', () => {});
    next();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, sent: () => sent };
}

const big = JSON.stringify({ new: Array.from({ length: 2000 }, (_, i) => ({ id: i, type: 'ban', scope: 'Ip', value: '192.0.2.1', duration: '1h' })), deleted: [] });

for (const chunked of [true, false]) {
  test(`a decision stream answer larger than the cap is refused, not held in memory (${chunked ? 'chunked' : 'content-length'})`, async (t) => {
    const l = await lapi(t, big, chunked);
    await assert.rejects(pullDecisionStream(l.url, 'key', true, 5000, systemClock, new AbortController().signal, 16 * 1024), (err) => {
      assert.ok(err instanceof CrowdsecPullError);
      assert.equal(err.kind, 'malformed');
      assert.match(err.message, /larger than 16384 bytes/);
      return true;
    });
    // Under the cap, the same answer is read whole.
    const ok = await pullDecisionStream(l.url, 'key', true, 5000, systemClock, new AbortController().signal, big.length);
    assert.equal(ok.added.length, 2000);
  });
}
