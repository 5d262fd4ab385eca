// One direction of a sealed pair's records (stream-sealed.h): its AES-128-GCM context, key, IV and
// sequence, and the record crypto, with Node's own OpenSSL (EVP_aes_128_gcm; HKDF-SHA256 through
// EVP_PKEY_HKDF), resolved from the node binary at load time: no crypto of our own.
#pragma once

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include <vector>

namespace sluice {

// One direction: the sealer (0, plain -> sealed) or the opener (1, sealed -> plain).
struct SealDir {
  EVP_CIPHER_CTX* ctx = nullptr;
  uint8_t key[16] = {};
  uint8_t iv[12] = {};
  uint64_t seq = 0;
  uint64_t records = 0;  // sealer: records and plaintext bytes under the current key
  uint64_t bytes = 0;
  uint8_t* buf = nullptr;
  size_t off = 0, len = 0;  // bytes of buf still to write: a sealed record, or an opened record's plaintext
  size_t have = 0;          // opener: bytes read of the current record (and the next one's header)
  size_t rec = 0;           // opener: the size of the record whose plaintext is being written
};

// Seals the `n` plaintext bytes at rec + 4 in place: header before, tag after; the sequence advances.
bool SealRecord(SealDir& d, uint8_t type, uint8_t* rec, size_t n);
// Opens the record at `rec` (header already checked, `n` ciphertext bytes) in place; the sequence advances.
bool OpenRecord(SealDir& d, uint8_t* rec, size_t n);
// The direction's next key (KEY_UPDATE): key | iv = HKDF-SHA256(key | iv, no salt, info, 28), sequence 0.
bool NextKey(SealDir& d, int enc);
// Contexts (already set to AES-128-GCM) kept for the next pair: creating and setting one up costs
// several times what keying it does.
constexpr size_t kCipherPoolMax = 256;
// Keys the direction with d.key (encrypting when `enc`), its context from `pool` or new.
bool KeyDir(SealDir& d, std::vector<void*>& pool, int enc);
// The key material wiped; the context back to `pool` (keyed with zeros) or freed.
void WipeDir(SealDir& d, std::vector<void*>& pool);

}  // namespace sluice
