// Golden TRUNK records (docs/tunnel-protocol.md, "Trunks"), computed with Python's `cryptography`
// (AESGCM) from key 000102..0f and iv a0a1..ab, independently of node:crypto and of the engine.
export const GOLDEN_TRUNK = {
  dataHi: '06000007aa8638bc7fe15ad86768deaa0fbb9fc769d74bc0025496', // seq 0: stream 7 DATA "hi"
  end: '060000053ffa669da8595523a1926069727f33811b1d97e480', // seq 1: stream 7 END
  credit: '06000009e3ce5cd48f49c0c63447ba9010d1ec0850811e5b00db6ef1e6', // seq 2: stream 7 CREDIT 65536
  reset: '060000058e6a77f66750934cc03bf7647838a3075f58cfc33e', // seq 3: stream 9 RESET
  ready: '060000052c6c6bae860ee943f67e1d1075b85dc2b143828e56', // seq 4: stream 7 READY
  ready0: '06000005aa8638bc7bc5028eea6e24c59c31f90c7dd62d2354', // seq 0: stream 7 READY (an attach's first record)
};
