// The record crypto of one direction of a sealed pair (sealed-record.h).
#include "sealed-record.h"
#include "ipsec-mb.h"
#include "stream-sealed.h"

#include <openssl/kdf.h>
#include <string.h>

namespace sluice {

static void Nonce(const SealDir& d, uint8_t* nonce) {
  memcpy(nonce, d.iv, 12);
  for (int i = 0; i < 8; i++) nonce[4 + i] ^= static_cast<uint8_t>(d.seq >> (56 - 8 * i));
}

bool SealRecord(SealDir& d, uint8_t type, uint8_t* rec, size_t n) {
  rec[0] = type;
  rec[1] = static_cast<uint8_t>(n >> 16);
  rec[2] = static_cast<uint8_t>(n >> 8);
  rec[3] = static_cast<uint8_t>(n);
  uint8_t nonce[12];
  Nonce(d, nonce);
  d.seq++;
  d.records++;
  d.bytes += n;
  if (d.imb != nullptr) {
    ImbGcmSeal(d.imb, d.imb_key, nonce, rec, kRecHeader, rec + kRecHeader, n, rec + kRecHeader + n);
    return true;
  }
  int outl;
  EVP_CIPHER_CTX* c = d.ctx;
  return EVP_EncryptInit_ex(c, nullptr, nullptr, nullptr, nonce) == 1 && EVP_EncryptUpdate(c, nullptr, &outl, rec, kRecHeader) == 1 &&
         (n == 0 || EVP_EncryptUpdate(c, rec + kRecHeader, &outl, rec + kRecHeader, static_cast<int>(n)) == 1) &&
         EVP_EncryptFinal_ex(c, rec + kRecHeader + n, &outl) == 1 &&
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, kRecTag, rec + kRecHeader + n) == 1;
}

bool OpenRecord(SealDir& d, uint8_t* rec, size_t n) {
  uint8_t nonce[12];
  Nonce(d, nonce);
  d.seq++;
  if (d.imb != nullptr) return ImbGcmOpen(d.imb, d.imb_key, nonce, rec, kRecHeader, rec + kRecHeader, n, rec + kRecHeader + n);
  int outl;
  EVP_CIPHER_CTX* c = d.ctx;
  return EVP_DecryptInit_ex(c, nullptr, nullptr, nullptr, nonce) == 1 && EVP_DecryptUpdate(c, nullptr, &outl, rec, kRecHeader) == 1 &&
         (n == 0 || EVP_DecryptUpdate(c, rec + kRecHeader, &outl, rec + kRecHeader, static_cast<int>(n)) == 1) &&
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, kRecTag, rec + kRecHeader + n) == 1 &&
         EVP_DecryptFinal_ex(c, rec + kRecHeader + n, &outl) == 1;
}

bool NextKey(SealDir& d, int enc) {
  static const char kInfo[] = "sluice data key update";
  uint8_t ikm[28], out[28];
  memcpy(ikm, d.key, 16);
  memcpy(ikm + 16, d.iv, 12);
  size_t outlen = sizeof out;
  EVP_PKEY_CTX* p = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr);
  bool ok = p != nullptr && EVP_PKEY_derive_init(p) > 0 && EVP_PKEY_CTX_set_hkdf_md(p, EVP_sha256()) > 0 &&
            EVP_PKEY_CTX_set1_hkdf_key(p, ikm, sizeof ikm) > 0 &&
            EVP_PKEY_CTX_add1_hkdf_info(p, reinterpret_cast<const unsigned char*>(kInfo), sizeof kInfo - 1) > 0 &&
            EVP_PKEY_derive(p, out, &outlen) > 0 && outlen == sizeof out;
  EVP_PKEY_CTX_free(p);
  if (ok) {
    memcpy(d.key, out, 16);
    memcpy(d.iv, out + 16, 12);
    if (d.imb != nullptr)
      ImbGcmKeySet(d.imb, d.imb_key, d.key);
    else
      ok = EVP_CipherInit_ex(d.ctx, nullptr, nullptr, d.key, nullptr, enc) == 1;
  }
  OPENSSL_cleanse(ikm, sizeof ikm);
  OPENSSL_cleanse(out, sizeof out);
  d.seq = d.records = d.bytes = 0;
  return ok;
}

void RecordCiphersInit(RecordCiphers& rc) { rc.imb = ImbNew(&rc.imb_missing); }

void RecordCiphersFree(RecordCiphers& rc) {
  for (void* c : rc.evp_pool) EVP_CIPHER_CTX_free(static_cast<EVP_CIPHER_CTX*>(c));
  rc.evp_pool.clear();
  for (void* k : rc.imb_pool) ImbGcmKeyFree(k);
  rc.imb_pool.clear();
  ImbFree(rc.imb);
  rc.imb = nullptr;
}

const char* RecordCipherName(const RecordCiphers& rc) { return rc.imb != nullptr && !rc.openssl_only ? "ipsec-mb" : "openssl"; }

const char* RecordCipherArch(const RecordCiphers& rc) { return ImbArch(rc.imb); }

bool KeyDir(SealDir& d, RecordCiphers& rc, int enc) {
  if (d.ctx == nullptr && d.imb_key == nullptr && rc.imb != nullptr && !rc.openssl_only) {
    if (!rc.imb_pool.empty()) {
      d.imb_key = rc.imb_pool.back();
      rc.imb_pool.pop_back();
    } else if ((d.imb_key = ImbGcmKeyNew()) == nullptr) {
      return false;
    }
    d.imb = rc.imb;
  }
  if (d.imb != nullptr) {
    ImbGcmKeySet(d.imb, d.imb_key, d.key);
    return true;
  }
  std::vector<void*>& pool = rc.evp_pool;
  if (d.ctx == nullptr && !pool.empty()) {
    d.ctx = static_cast<EVP_CIPHER_CTX*>(pool.back());
    pool.pop_back();
  } else if (d.ctx == nullptr) {
    d.ctx = EVP_CIPHER_CTX_new();
    if (d.ctx == nullptr || EVP_CipherInit_ex(d.ctx, EVP_aes_128_gcm(), nullptr, nullptr, nullptr, enc) != 1) return false;
  }
  return EVP_CipherInit_ex(d.ctx, nullptr, nullptr, d.key, nullptr, enc) == 1;
}

void WipeDir(SealDir& d, RecordCiphers& rc) {
  static const uint8_t kZero[16] = {};
  std::vector<void*>& pool = rc.evp_pool;
  // Keyed with zeros (or wiped) before it waits in the pool: no key schedule of an ended pair stays behind.
  if (d.ctx != nullptr && pool.size() < kCipherPoolMax && EVP_CipherInit_ex(d.ctx, nullptr, nullptr, kZero, nullptr, 1) == 1) {
    pool.push_back(d.ctx);
  } else {
    EVP_CIPHER_CTX_free(d.ctx);
  }
  if (d.imb_key != nullptr && rc.imb_pool.size() < kCipherPoolMax) {
    ImbGcmKeyWipe(d.imb_key);
    rc.imb_pool.push_back(d.imb_key);
  } else {
    ImbGcmKeyFree(d.imb_key);
  }
  d.ctx = nullptr;
  d.imb_key = nullptr;
  d.imb = nullptr;
  OPENSSL_cleanse(d.key, sizeof d.key);
  OPENSSL_cleanse(d.iv, sizeof d.iv);
}

}  // namespace sluice
