// ChaCha20-Poly1305 (RFC 8439) for the tunnel datagrams' key slots (seal.cc), one key per context.
// The cipher is always Node's own OpenSSL: no cryptography of our own. Two ways to reach it:
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

// The provider's functions for ChaCha20-Poly1305, or nullptr when they cannot be reached (then
// every key uses EVP). Free with AeadProviderFree once no key uses it.
AeadProvider* AeadProviderResolve();
void AeadProviderFree(AeadProvider* p);

struct Aead {
  const AeadProvider* prov = nullptr;  // set: `ctx` is the provider's own context
  void* ctx = nullptr;                 // the provider's context, or an EVP_CIPHER_CTX
};

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
