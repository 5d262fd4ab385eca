// What the sealed pair's tests share: the record format computed with node:crypto alone
// (independently of the engine's C++), and connections of the native stream datapath to join.
import { createCipheriv, createDecipheriv, hkdfSync } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import type { TestContext } from 'node:test';
import type { SealedKeys, StreamConn } from '../../src/datapath/stream-datapath.js';
import type { NativeStreamDatapath } from '../../src/datapath/native/native-stream-datapath.js';
import { nativeStreamCase } from './stream-datapaths.js';

export const DATA = 1;
export const END = 2;
export const KEY_UPDATE = 4;

const nativeCase = nativeStreamCase();
export const skip = nativeCase.skip ?? false;
export function nativeDp(): NativeStreamDatapath {
  if (!nativeCase.datapath) throw new Error('CI=true: the native stream datapath must load (node native/build.mjs)');
  return nativeCase.datapath as NativeStreamDatapath;
}

/** One direction's key state as the wire format defines it. */
export interface DirKey {
  key: Buffer;
  iv: Buffer;
  seq: bigint;
}

function nonce(k: DirKey): Buffer {
  const n = Buffer.from(k.iv);
  const s = Buffer.alloc(8);
  s.writeBigUInt64BE(k.seq);
  for (let i = 0; i < 8; i++) n[4 + i]! ^= s[i]!;
  return n;
}

/** The key after KEY_UPDATE: HKDF-SHA256(key | iv, empty salt, "sluice data key update", 28). */
export function rekey(k: DirKey): void {
  const out = Buffer.from(hkdfSync('sha256', Buffer.concat([k.key, k.iv]), Buffer.alloc(0), 'sluice data key update', 28));
  k.key = out.subarray(0, 16);
  k.iv = out.subarray(16, 28);
  k.seq = 0n;
}

/** One record sealed with `k` (its sequence advances; KEY_UPDATE also rekeys it). */
export function seal(k: DirKey, type: number, plain: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.from([type, plain.length >> 16, (plain.length >> 8) & 255, plain.length & 255]);
  const c = createCipheriv('aes-128-gcm', k.key, nonce(k));
  c.setAAD(header);
  const body = Buffer.concat([c.update(plain), c.final()]);
  k.seq++;
  if (type === KEY_UPDATE) rekey(k);
  return Buffer.concat([header, body, c.getAuthTag()]);
}

/** Reads records from a byte stream and opens them with node:crypto; KEY_UPDATE rekeys. */
export class RecordReader {
  #buf = Buffer.alloc(0);
  readonly records: { type: number; seq: bigint; plain: Buffer }[] = [];
  constructor(readonly k: DirKey) {}

  push(chunk: Buffer): void {
    this.#buf = Buffer.concat([this.#buf, chunk]);
    for (;;) {
      if (this.#buf.length < 4) return;
      const len = this.#buf.readUIntBE(1, 3);
      if (this.#buf.length < 4 + len + 16) return;
      const header = this.#buf.subarray(0, 4);
      const d = createDecipheriv('aes-128-gcm', this.k.key, nonce(this.k));
      d.setAAD(header);
      d.setAuthTag(this.#buf.subarray(4 + len, 4 + len + 16));
      const plain = Buffer.concat([d.update(this.#buf.subarray(4, 4 + len)), d.final()]);
      const type = header[0]!;
      this.records.push({ type, seq: this.k.seq, plain });
      this.k.seq++;
      if (type === KEY_UPDATE) rekey(this.k);
      this.#buf = this.#buf.subarray(4 + len + 16);
    }
  }

  plaintext(): Buffer {
    return Buffer.concat(this.records.filter((r) => r.type === DATA).map((r) => r.plain));
  }
}

/** Keys with distinct bytes per direction (the gateway's view); `mirror` gives the agent's. */
export function testKeys(sealSeq = 0, openSeq = 0): SealedKeys {
  const b = (n: number, start: number) => Buffer.from(Array.from({ length: n }, (_, i) => (start + i * 7) & 255));
  return { sealKey: b(16, 1), sealIv: b(12, 90), sealSeq, openKey: b(16, 33), openIv: b(12, 150), openSeq };
}

export function mirror(k: SealedKeys): SealedKeys {
  return { sealKey: k.openKey, sealIv: k.openIv, sealSeq: k.openSeq, openKey: k.sealKey, openIv: k.sealIv, openSeq: k.sealSeq };
}

/** The far end's view of the pair's sealer (what it reads) and opener (what it must write). */
export function farEnd(k: SealedKeys): { reads: DirKey; writes: DirKey } {
  return {
    reads: { key: k.sealKey, iv: k.sealIv, seq: BigInt(k.sealSeq) },
    writes: { key: k.openKey, iv: k.openIv, seq: BigInt(k.openSeq) },
  };
}

/** A connection accepted by the native datapath and the Node socket at its other end. */
export async function acceptedConn(t: TestContext, host: string): Promise<{ conn: StreamConn; peer: net.Socket }> {
  const dp = nativeDp();
  let got!: (c: StreamConn) => void;
  const accepted = new Promise<StreamConn>((r) => (got = r));
  const listener = await dp.listen(host, 0, (c) => got(c));
  const peer = net.connect({ host, port: listener.local.port, allowHalfOpen: true });
  peer.on('error', () => {});
  t.after(() => peer.destroy());
  const conn = await accepted;
  t.after(() => conn.destroy());
  await listener.close();
  if (peer.connecting) await once(peer, 'connect');
  return { conn, peer };
}

/** Both ends of one TCP connection held by the native datapath (dialed and accepted). */
export async function nativeLink(t: TestContext, host: string): Promise<{ dialed: StreamConn; accepted: StreamConn }> {
  const dp = nativeDp();
  let got!: (c: StreamConn) => void;
  const accepted = new Promise<StreamConn>((r) => (got = r));
  const listener = await dp.listen(host, 0, (c) => got(c));
  const dialed = await new Promise<StreamConn>((resolve, reject) =>
    dp.dial({ address: host, port: listener.local.port, family: host.includes(':') ? 6 : 4 }, 2000, (err, c) => (err ? reject(err) : resolve(c!))),
  );
  const acc = await accepted;
  t.after(() => (dialed.destroy(), acc.destroy()));
  await listener.close();
  return { dialed, accepted: acc };
}

/**
 * How the peer ended `s` (which must be reading): 'reset' for a RST, 'FIN only' for a FIN. libuv
 * reports a RST that follows data as an EOF, so after an EOF a probe write tells them apart: a
 * reset socket refuses it (EPIPE), a half-closed one takes it.
 */
export function peerEnd(s: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    const reset = (code: string | undefined) => resolve(code === 'ECONNRESET' || code === 'EPIPE' ? 'reset' : `error ${code}`);
    s.once('error', (err: NodeJS.ErrnoException) => reset(err.code));
    s.once('end', () => s.write('probe', (err) => (err ? reset((err as NodeJS.ErrnoException).code) : resolve('FIN only'))));
  });
}
