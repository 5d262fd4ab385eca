// Intel's Multi-Buffer Crypto for IPsec library (ipsec-mb, BSD-3; the one DPDK uses) as a second
// implementation of the AEADs the addon already takes from Node's OpenSSL: AES-128-GCM for sealed
// records (sealed-record.cc) and ChaCha20-Poly1305 for tunnel datagrams (aead.cc). OpenSSL 3.0
// does not use VAES/AVX-512; ipsec-mb does, and seals a 32 KiB record 2.6x as fast on this
// project's machines (docs/datapath.md, "The trunk"). Same algorithms, same bytes: only who runs
// them changes. No cryptography of our own: every cipher operation is a library call.
//
// Optional twice over:
//   at build time: compiled against <intel-ipsec-mb.h> only where that header exists (Debian's
//                  libipsec-mb-dev); elsewhere every function here says "absent".
//   at run time:   the library is dlopen()ed ("libIPSec_MB.so.1") when the first manager is made;
//                  absent, of another minor version than the header, or on a CPU without AES-NI,
//                  ImbNew returns nullptr and the caller keeps OpenSSL.
// A manager is not thread-safe: each engine makes its own and uses it on its own thread only.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace sluice {

struct Imb;  // one ipsec-mb manager (IMB_MGR) and the architecture it runs

// A manager for this engine, or nullptr (then `why`, when given, says why in a few words).
Imb* ImbNew(const char** why);
void ImbFree(Imb* m);
// The code path the library picked for this CPU: "avx512", "avx2", "avx" or "sse".
const char* ImbArch(const Imb* m);

// AES-128-GCM (12-byte nonce, 16-byte tag). A key is an opaque block from ImbGcmKeyNew (aligned as
// the library wants it), expanded by ImbGcmKeySet; ImbGcmKeyFree wipes it first.
void* ImbGcmKeyNew();
void ImbGcmKeyFree(void* k);
void ImbGcmKeySet(Imb* m, void* k, const uint8_t key[16]);
void ImbGcmKeyWipe(void* k);
// Seals `n` bytes of `data` in place with `aad_len` bytes of `aad`, writing the tag.
void ImbGcmSeal(Imb* m, const void* k, const uint8_t nonce[12], const uint8_t* aad, size_t aad_len, uint8_t* data, size_t n, uint8_t tag[16]);
// Opens in place; false when `tag` does not authenticate (then `data` must not be used).
bool ImbGcmOpen(Imb* m, const void* k, const uint8_t nonce[12], const uint8_t* aad, size_t aad_len, uint8_t* data, size_t n, const uint8_t tag[16]);

// ChaCha20-Poly1305 (RFC 8439) with a 32-byte key, one call per datagram (the job API).
bool ImbChachaSeal(Imb* m, const uint8_t key[32], const uint8_t nonce[12], const uint8_t* aad, size_t aad_len, uint8_t* data, size_t n,
                   uint8_t tag[16]);
bool ImbChachaOpen(Imb* m, const uint8_t key[32], const uint8_t nonce[12], const uint8_t* aad, size_t aad_len, uint8_t* data, size_t n,
                   const uint8_t tag[16]);

}  // namespace sluice
