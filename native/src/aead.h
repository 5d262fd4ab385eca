// ChaCha20-Poly1305 (RFC 8439) for the tunnel datagrams' key slots (seal.cc), one key per context.
// No cryptography of our own: the cipher is Intel's ipsec-mb where the engine could load it
// (ipsec-mb.h; one call per datagram, 2-3x OpenSSL 3.0's speed at 64 and 1400 bytes on this
// project's machines, docs/datapath.md "Sealed tunnel datagrams in the batch"), else Node's own
// OpenSSL, reached one of two ways:
//   direct: the functions of the provider that implements "ChaCha20-Poly1305" (OpenSSL's default
//           provider), called through its dispatch table (OSSL_PROVIDER_query_operation, public
//           in <openssl/core_dispatch.h>). Same implementation and bytes as EVP; it skips the EVP
//           layer's per-call work (re-resolving the IV length through a parameter query on every
//           init, the ctrl-to-parameter translation for the tag), which cost about 30 % of a
//           64-byte seal (docs/datapath.md, "Sealed tunnel datagrams in the batch").
//   evp:    EVP_Encrypt*/EVP_Decrypt* on an EVP_CIPHER_CTX, where the provider cannot be reached
//           directly (or a test asks for it: seal.cc's sealPath).
// Everything runs on the JavaScript thread; a context is used by one key slot at a time.
#pragma once

#include <cstdint>

namespace sluice {

struct AeadProvider;  // the resolved dispatch table and the fetched cipher that keeps it loaded
struct Imb;

// The provider's functions for ChaCha20-Poly1305, or nullptr when they cannot be reached (then
// every key uses EVP). Free with AeadProviderFree once no key uses it.
AeadProvider* AeadProviderResolve();
void AeadProviderFree(AeadProvider* p);

struct Aead {
  const AeadProvider* prov = nullptr;  // set: `ctx` is the provider's own context
  void* ctx = nullptr;                 // the provider's context, or an EVP_CIPHER_CTX
  Imb* imb = nullptr;                  // set instead: ipsec-mb with `key` (wiped by AeadFree)
  uint8_t key[32] = {};
};

// The ways an engine's new keys can take, resolved at its first key: ipsec-mb (kAeadImb), the
// provider's functions (kAeadProvider) or EVP (kAeadEvp). `want` is the best one by default; a
// test may ask for another (seal.cc's sealPath) and gets the best available at or below it.
enum AeadPath { kAeadImb = 0, kAeadProvider = 1, kAeadEvp = 2 };
struct AeadPaths {
  bool resolved = false;
  AeadProvider* prov = nullptr;
  Imb* imb = nullptr;                 // this engine's manager (ipsec-mb is not thread-safe)
  const char* imb_missing = nullptr;  // why there is none
  AeadPath want = kAeadImb;
};
void AeadPathsResolve(AeadPaths& p);
void AeadPathsFree(AeadPaths& p);
// The way keys added now take (resolving first).
AeadPath AeadPathNow(AeadPaths& p);
// Keys `a` through the way AeadPathNow names; false when OpenSSL refuses (no ChaCha20-Poly1305 here).
bool AeadInitFrom(AeadPaths& p, Aead* a, const uint8_t* key, bool encrypt);

// Keys `a` with the 32-byte `key` for sealing (`encrypt`) or opening, through `prov` when given,
// else EVP. False when OpenSSL refuses (no ChaCha20-Poly1305 here).
bool AeadInit(Aead* a, const AeadProvider* prov, const uint8_t* key, bool encrypt);
void AeadFree(Aead* a);

// Seals `len` bytes of `data` in place under the 12-byte `nonce` with `aad` (16 bytes) as associated
// data, writing the 16-byte tag to `tag`.
bool AeadSeal(Aead* a, const uint8_t* nonce, const uint8_t* aad, uint8_t* data, int len, uint8_t* tag);
// Opens `len` bytes of `data` in place; false when `tag` does not authenticate them (then `data`
// holds unauthenticated plaintext that must not be used).
bool AeadOpen(Aead* a, const uint8_t* nonce, const uint8_t* aad, uint8_t* data, int len, const uint8_t* tag);

}  // namespace sluice
