import assert from 'node:assert/strict';
import { once } from 'node:events';
import type net from 'node:net';
import { tcpConnect, tcpServer, waitFor } from '../helpers/net.js';
import { perStreamDatapath } from '../datapath/stream-datapaths.js';

// Bulk in both directions at once through a plain route, once per stream datapath: every byte is
// checked in order (a lost, repeated or reordered read of the pump shows as a mismatch at its
// offset), and each side's FIN is forwarded only after every byte it sent, whichever side
// half-closes first while the other is still sending.
const { test, startNode } = perStreamDatapath();

const TOTAL = 24 * 1024 * 1024;
const CHUNK = 192 * 1024; // not a multiple of the engine's reads, so chunks and reads never line up

const route = (upstream: number) => `
routes:
  bulk:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${upstream}
`;

/** Byte `i` of the stream tagged `seed`: varies within a page and from page to page. */
function patternByte(seed: number, i: number): number {
  return (i * 31 + (i >>> 12) * 7 + seed) & 255;
}

function patternChunk(seed: number, offset: number, len: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  for (let k = 0; k < len; k++) b[k] = patternByte(seed, offset + k);
  return b;
}

/** Writes TOTAL bytes of pattern `seed` as fast as `s` takes them; `end` sends the FIN after them. */
async function sendPattern(s: net.Socket, seed: number, end: boolean): Promise<void> {
  for (let off = 0; off < TOTAL; off += CHUNK) {
    if (!s.write(patternChunk(seed, off, Math.min(CHUNK, TOTAL - off)))) await once(s, 'drain');
  }
  if (end) s.end();
}

/** Checks what `s` delivers against pattern `seed` until its FIN; resolves with the byte count. */
function checkPattern(s: net.Socket, seed: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let off = 0;
    s.on('data', (d: Buffer) => {
      for (let k = 0; k < d.length; k++) {
        if (d[k] !== patternByte(seed, off + k)) {
          s.destroy();
          return reject(new Error(`byte ${off + k} of stream ${seed}: ${d[k]}, expected ${patternByte(seed, off + k)}`));
        }
      }
      off += d.length;
    });
    s.once('end', () => resolve(off));
    s.once('error', reject);
  });
}

for (const first of ['client', 'upstream'] as const) {
  test(`tcp bulk: 24 MiB each way at once, every byte in order; the ${first} half-closes first while the other side is still sending`, async (t) => {
    let upstreamGot: Promise<number> | undefined;
    let upstreamSent: Promise<void> | undefined;
    const up = await tcpServer(t, (s) => {
      upstreamGot = checkPattern(s, 1);
      // The second side to finish sends its FIN only once the first side's FIN has arrived.
      upstreamSent = first === 'upstream' ? sendPattern(s, 2, true) : sendPattern(s, 2, false).then(() => upstreamGot!).then(() => void s.end());
    });
    const n = await startNode(t, route(up.port));
    const c = await tcpConnect(t, n.port('bulk'));
    const clientGot = checkPattern(c, 2);
    const clientSent = first === 'client' ? sendPattern(c, 1, true) : sendPattern(c, 1, false).then(() => clientGot).then(() => void c.end());
    await waitFor(() => upstreamGot !== undefined, 'upstream accepted');
    const [fromUpstream, fromClient] = await Promise.all([clientGot, upstreamGot!, clientSent, upstreamSent!]);
    assert.equal(fromUpstream, TOTAL);
    assert.equal(fromClient, TOTAL);
    await waitFor(() => n.ofType('session-ended').length === 1, 'end event', 10_000);
    const end = n.ofType('session-ended')[0]!;
    assert.equal(end.reason, first === 'client' ? 'client-closed' : 'upstream-closed');
    assert.equal(end.counters.bytesFromClient, TOTAL);
    assert.equal(end.counters.bytesToClient, TOTAL);
  });
}
