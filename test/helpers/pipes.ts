import { Duplex, type PassThrough } from 'node:stream';

/** A socket-like Duplex over in-memory pipes: it reads what `readFrom` carries and writes into `writeTo`. */
export function duplexOf(readFrom: PassThrough, writeTo: PassThrough): Duplex {
  const d = new Duplex({
    read() {},
    write(chunk, _enc, cb) {
      writeTo.write(chunk, cb);
    },
  });
  readFrom.on('data', (c: Buffer) => d.push(c));
  return d;
}
