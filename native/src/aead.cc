// ChaCha20-Poly1305 through ipsec-mb, OpenSSL's provider functions or EVP (aead.h says why each).
#include "aead.h"
#include "ipsec-mb.h"

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <string.h>
#include <strings.h>

namespace sluice {

constexpr int kNonce = 12;
constexpr int kAad = 16;
constexpr int kTagBytes = 16;
constexpr int kKey = 32;

struct AeadProvider {
  EVP_CIPHER* cipher = nullptr;  // fetched: holds the provider while any context of it lives
  void* provctx = nullptr;
  OSSL_FUNC_cipher_newctx_fn* newctx = nullptr;
  OSSL_FUNC_cipher_freectx_fn* freectx = nullptr;
  OSSL_FUNC_cipher_encrypt_init_fn* einit = nullptr;
  OSSL_FUNC_cipher_decrypt_init_fn* dinit = nullptr;
  OSSL_FUNC_cipher_update_fn* update = nullptr;
  OSSL_FUNC_cipher_final_fn* final = nullptr;
  OSSL_FUNC_cipher_get_ctx_params_fn* get_params = nullptr;
  OSSL_FUNC_cipher_set_ctx_params_fn* set_params = nullptr;
};

// True when `name` is one of the colon-separated `names` (an OSSL_ALGORITHM's algorithm_names).
static bool Named(const char* names, const char* name) {
  size_t n = strlen(name);
  for (const char* p = names; p != nullptr && *p != 0;) {
    const char* end = strchr(p, ':');
    size_t len = end == nullptr ? strlen(p) : static_cast<size_t>(end - p);
    if (len == n && strncasecmp(p, name, n) == 0) return true;
    p = end == nullptr ? nullptr : end + 1;
  }
  return false;
}

// The implementation EVP itself would use: the fetched cipher names its provider, whose cipher
// table holds the same algorithm under one of its names.
AeadProvider* AeadProviderResolve() {
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
  if (cipher == nullptr) return nullptr;
  const OSSL_PROVIDER* prov = EVP_CIPHER_get0_provider(cipher);
  int no_cache = 0;
  const OSSL_ALGORITHM* algs = prov == nullptr ? nullptr : OSSL_PROVIDER_query_operation(prov, OSSL_OP_CIPHER, &no_cache);
  AeadProvider* p = new AeadProvider();
  p->cipher = cipher;
  p->provctx = prov == nullptr ? nullptr : OSSL_PROVIDER_get0_provider_ctx(prov);
  for (const OSSL_ALGORITHM* a = algs; a != nullptr && a->algorithm_names != nullptr; a++) {
    if (!Named(a->algorithm_names, "ChaCha20-Poly1305")) continue;
    for (const OSSL_DISPATCH* d = a->implementation; d->function_id != 0; d++) {
      switch (d->function_id) {
        case OSSL_FUNC_CIPHER_NEWCTX: p->newctx = OSSL_FUNC_cipher_newctx(d); break;
        case OSSL_FUNC_CIPHER_FREECTX: p->freectx = OSSL_FUNC_cipher_freectx(d); break;
        case OSSL_FUNC_CIPHER_ENCRYPT_INIT: p->einit = OSSL_FUNC_cipher_encrypt_init(d); break;
        case OSSL_FUNC_CIPHER_DECRYPT_INIT: p->dinit = OSSL_FUNC_cipher_decrypt_init(d); break;
        case OSSL_FUNC_CIPHER_UPDATE: p->update = OSSL_FUNC_cipher_update(d); break;
        case OSSL_FUNC_CIPHER_FINAL: p->final = OSSL_FUNC_cipher_final(d); break;
        case OSSL_FUNC_CIPHER_GET_CTX_PARAMS: p->get_params = OSSL_FUNC_cipher_get_ctx_params(d); break;
        case OSSL_FUNC_CIPHER_SET_CTX_PARAMS: p->set_params = OSSL_FUNC_cipher_set_ctx_params(d); break;
        default: break;
      }
    }
    break;
  }
  if (algs != nullptr) OSSL_PROVIDER_unquery_operation(prov, OSSL_OP_CIPHER, algs);
  if (p->provctx == nullptr || p->newctx == nullptr || p->freectx == nullptr || p->einit == nullptr || p->dinit == nullptr ||
      p->update == nullptr || p->final == nullptr || p->get_params == nullptr || p->set_params == nullptr) {
    AeadProviderFree(p);
    return nullptr;
  }
  return p;
}

void AeadProviderFree(AeadProvider* p) {
  if (p == nullptr) return;
  EVP_CIPHER_free(p->cipher);
  delete p;
}

void AeadPathsResolve(AeadPaths& p) {
  if (p.resolved) return;
  p.resolved = true;
  p.prov = AeadProviderResolve();
  p.imb = ImbNew(&p.imb_missing);
}

void AeadPathsFree(AeadPaths& p) {
  AeadProviderFree(p.prov);
  ImbFree(p.imb);
  p = AeadPaths();
}

AeadPath AeadPathNow(AeadPaths& p) {
  AeadPathsResolve(p);
  if (p.want == kAeadImb && p.imb != nullptr) return kAeadImb;
  if (p.want != kAeadEvp && p.prov != nullptr) return kAeadProvider;
  return kAeadEvp;
}

bool AeadInitFrom(AeadPaths& p, Aead* a, const uint8_t* key, bool encrypt) {
  AeadPath way = AeadPathNow(p);
  if (way != kAeadImb) return AeadInit(a, way == kAeadProvider ? p.prov : nullptr, key, encrypt);
  AeadFree(a);
  a->imb = p.imb;
  memcpy(a->key, key, kKey);
  return true;
}

bool AeadInit(Aead* a, const AeadProvider* prov, const uint8_t* key, bool encrypt) {
  AeadFree(a);
  if (prov != nullptr) {
    void* ctx = prov->newctx(prov->provctx);
    if (ctx != nullptr && (encrypt ? prov->einit(ctx, key, kKey, nullptr, 0, nullptr) : prov->dinit(ctx, key, kKey, nullptr, 0, nullptr)) == 1) {
      a->prov = prov;
      a->ctx = ctx;
      return true;
    }
    if (ctx != nullptr) prov->freectx(ctx);
    return false;
  }
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int ok = ctx == nullptr ? 0
           : encrypt      ? EVP_EncryptInit_ex(ctx, EVP_chacha20_poly1305(), nullptr, key, nullptr)
                          : EVP_DecryptInit_ex(ctx, EVP_chacha20_poly1305(), nullptr, key, nullptr);
  if (ok != 1) {
    EVP_CIPHER_CTX_free(ctx);
    return false;
  }
  a->ctx = ctx;
  return true;
}

void AeadFree(Aead* a) {
  if (a->imb != nullptr) OPENSSL_cleanse(a->key, kKey);
  a->imb = nullptr;
  if (a->ctx == nullptr) return;
  if (a->prov != nullptr)
    a->prov->freectx(a->ctx);
  else
    EVP_CIPHER_CTX_free(static_cast<EVP_CIPHER_CTX*>(a->ctx));
  a->prov = nullptr;
  a->ctx = nullptr;
}

bool AeadSeal(Aead* a, const uint8_t* nonce, const uint8_t* aad, uint8_t* data, int len, uint8_t* tag) {
  if (a->imb != nullptr) return ImbChachaSeal(a->imb, a->key, nonce, aad, kAad, data, static_cast<size_t>(len), tag);
  if (a->prov != nullptr) {
    const AeadProvider* p = a->prov;
    size_t outl = 0;
    OSSL_PARAM params[2] = {OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, kTagBytes), OSSL_PARAM_construct_end()};
    return p->einit(a->ctx, nullptr, 0, nonce, kNonce, nullptr) == 1 && p->update(a->ctx, nullptr, &outl, kAad, aad, kAad) == 1 &&
           (len == 0 || p->update(a->ctx, data, &outl, static_cast<size_t>(len), data, static_cast<size_t>(len)) == 1) &&
           p->final(a->ctx, data + len, &outl, 0) == 1 && p->get_params(a->ctx, params) == 1;
  }
  EVP_CIPHER_CTX* c = static_cast<EVP_CIPHER_CTX*>(a->ctx);
  int outl = 0;
  return EVP_EncryptInit_ex(c, nullptr, nullptr, nullptr, nonce) == 1 && EVP_EncryptUpdate(c, nullptr, &outl, aad, kAad) == 1 &&
         (len == 0 || EVP_EncryptUpdate(c, data, &outl, data, len) == 1) && EVP_EncryptFinal_ex(c, data + len, &outl) == 1 &&
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, kTagBytes, tag) == 1;
}

bool AeadOpen(Aead* a, const uint8_t* nonce, const uint8_t* aad, uint8_t* data, int len, const uint8_t* tag) {
  if (a->imb != nullptr) return ImbChachaOpen(a->imb, a->key, nonce, aad, kAad, data, static_cast<size_t>(len), tag);
  if (a->prov != nullptr) {
    const AeadProvider* p = a->prov;
    size_t outl = 0;
    OSSL_PARAM params[2] = {OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, const_cast<uint8_t*>(tag), kTagBytes),
                            OSSL_PARAM_construct_end()};
    return p->dinit(a->ctx, nullptr, 0, nonce, kNonce, nullptr) == 1 && p->update(a->ctx, nullptr, &outl, kAad, aad, kAad) == 1 &&
           (len == 0 || p->update(a->ctx, data, &outl, static_cast<size_t>(len), data, static_cast<size_t>(len)) == 1) &&
           p->set_params(a->ctx, params) == 1 && p->final(a->ctx, data + len, &outl, 0) == 1;
  }
  EVP_CIPHER_CTX* c = static_cast<EVP_CIPHER_CTX*>(a->ctx);
  int outl = 0;
  return EVP_DecryptInit_ex(c, nullptr, nullptr, nullptr, nonce) == 1 && EVP_DecryptUpdate(c, nullptr, &outl, aad, kAad) == 1 &&
         (len == 0 || EVP_DecryptUpdate(c, data, &outl, data, len) == 1) &&
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, kTagBytes, const_cast<uint8_t*>(tag)) == 1 &&
         EVP_DecryptFinal_ex(c, data + len, &outl) == 1;
}

}  // namespace sluice
