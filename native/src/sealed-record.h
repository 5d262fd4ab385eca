// One direction of a sealed pair's records (stream-sealed.h): its AES-128-GCM key, IV and
// sequence, and the record crypto. AES-128-GCM runs in Intel's ipsec-mb where the engine could
// load it (ipsec-mb.h: 2.6x OpenSSL 3.0's speed on VAES CPUs), else in Node's own OpenSSL
// (EVP_aes_128_gcm); same bytes either way. HKDF-SHA256 is always OpenSSL's (EVP_PKEY_HKDF),
// resolved from the node binary at load time: no crypto of our own.
#pragma once

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include <vector>

namespace sluice {

struct Imb;

// The engine's AES-128-GCM: its ipsec-mb manager (nullptr: OpenSSL only) and the per-direction
// objects of ended pairs kept for the next ones.
struct RecordCiphers {
  Imb* imb = nullptr;
  const char* imb_missing = nullptr;  // why there is no manager (for the engine's info)
  bool openssl_only = false;          // streamRecordCipher(engine, 'openssl'): new keys use EVP (tests compare both)
  std::vector<void*> evp_pool;        // EVP_CIPHER_CTX, set to AES-128-GCM and keyed with zeros
  std::vector<void*> imb_pool;        // ipsec-mb key blocks, wiped
};
// The manager made (or the reason kept) at engine start; everything freed at engine teardown.
void RecordCiphersInit(RecordCiphers& rc);
void RecordCiphersFree(RecordCiphers& rc);
// "ipsec-mb" or "openssl": what keys made from now on use.
const char* RecordCipherName(const RecordCiphers& rc);
// ipsec-mb's code path for this CPU ("avx512", ...); only where rc.imb is set.
const char* RecordCipherArch(const RecordCiphers& rc);

// One direction: the sealer (0, plain -> sealed) or the opener (1, sealed -> plain).
struct SealDir {
  EVP_CIPHER_CTX* ctx = nullptr;  // OpenSSL's context, or
  void* imb_key = nullptr;        // ipsec-mb's expanded key, used through `imb`
  Imb* imb = nullptr;
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
// Keys the direction with d.key (encrypting when `enc`), its context or key block from the pool or new.
bool KeyDir(SealDir& d, RecordCiphers& rc, int enc);
// The key material wiped; the context or key block back to the pool or freed.
void WipeDir(SealDir& d, RecordCiphers& rc);

}  // namespace sluice
