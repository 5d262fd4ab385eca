// ipsec-mb through dlopen (ipsec-mb.h says why and when).
#include "ipsec-mb.h"

// SLUICE_NO_IPSEC_MB builds the OpenSSL-only addon where the header exists (to test that build).
#if defined(__has_include) && !defined(SLUICE_NO_IPSEC_MB)
#if __has_include(<intel-ipsec-mb.h>)
#define SLUICE_IPSEC_MB 1
#endif
#endif

#ifdef SLUICE_IPSEC_MB

#include <dlfcn.h>
#include <intel-ipsec-mb.h>
#include <openssl/crypto.h>
#include <stdlib.h>

#include <mutex>

namespace sluice {

// The library's entry points that are plain functions; every cipher call goes through the
// manager's own function pointers (the IMB_* macros), so these are all that dlsym needs.
struct ImbLib {
  IMB_MGR* (*alloc)(uint64_t) = nullptr;
  void (*init_auto)(IMB_MGR*, IMB_ARCH*) = nullptr;
  void (*free)(IMB_MGR*) = nullptr;
  unsigned (*version)(void) = nullptr;
  int (*get_errno)(IMB_MGR*) = nullptr;
  const char* missing = nullptr;  // why there is no library, or nullptr when loaded
};

// Loaded once per process and never unloaded (managers of other engines may still use it).
static const ImbLib& Lib() {
  static ImbLib lib;
  static std::once_flag once;
  std::call_once(once, [] {
    void* h = dlopen("libIPSec_MB.so.1", RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
      lib.missing = "libIPSec_MB.so.1 not found";
      return;
    }
    lib.alloc = reinterpret_cast<IMB_MGR* (*)(uint64_t)>(dlsym(h, "alloc_mb_mgr"));
    lib.init_auto = reinterpret_cast<void (*)(IMB_MGR*, IMB_ARCH*)>(dlsym(h, "init_mb_mgr_auto"));
    lib.free = reinterpret_cast<void (*)(IMB_MGR*)>(dlsym(h, "free_mb_mgr"));
    lib.version = reinterpret_cast<unsigned (*)(void)>(dlsym(h, "imb_get_version"));
    lib.get_errno = reinterpret_cast<int (*)(IMB_MGR*)>(dlsym(h, "imb_get_errno"));
    if (lib.alloc == nullptr || lib.init_auto == nullptr || lib.free == nullptr || lib.version == nullptr || lib.get_errno == nullptr) {
      lib.missing = "libIPSec_MB.so.1 lacks alloc_mb_mgr/init_mb_mgr_auto";
    } else if ((lib.version() >> 8) != (IMB_VERSION_NUM >> 8)) {
      // IMB_MGR's layout (the function pointers the macros call) is the header's version's.
      lib.missing = "libIPSec_MB.so.1 is not the header's version (" IMB_VERSION_STR ")";
    }
  });
  return lib;
}

struct Imb {
  IMB_MGR* mgr = nullptr;
  IMB_ARCH arch = IMB_ARCH_NONE;
};

Imb* ImbNew(const char** why) {
  const ImbLib& lib = Lib();
  const char* no = lib.missing;
  IMB_MGR* mgr = no == nullptr ? lib.alloc(0) : nullptr;
  if (no == nullptr && mgr == nullptr) no = "alloc_mb_mgr failed";
  IMB_ARCH arch = IMB_ARCH_NONE;
  if (mgr != nullptr) {
    lib.init_auto(mgr, &arch);
    if (lib.get_errno(mgr) != 0) no = "init_mb_mgr_auto failed";
    // Without AES-NI the library emulates AES in plain code: OpenSSL is no slower there.
    else if (arch == IMB_ARCH_NOAESNI || arch == IMB_ARCH_NONE || (mgr->features & IMB_FEATURE_AESNI) == 0) no = "no AES-NI on this CPU";
  }
  if (no != nullptr) {
    if (mgr != nullptr) lib.free(mgr);
    if (why != nullptr) *why = no;
    return nullptr;
  }
  Imb* m = new Imb();
  m->mgr = mgr;
  m->arch = arch;
  return m;
}

void ImbFree(Imb* m) {
  if (m == nullptr) return;
  Lib().free(m->mgr);
  delete m;
}

const char* ImbArch(const Imb* m) {
  switch (m->arch) {
    case IMB_ARCH_AVX512: return "avx512";
    case IMB_ARCH_AVX2: return "avx2";
    case IMB_ARCH_AVX: return "avx";
    default: return "sse";
  }
}

void* ImbGcmKeyNew() { return aligned_alloc(64, (sizeof(gcm_key_data) + 63) / 64 * 64); }

void ImbGcmKeyWipe(void* k) { OPENSSL_cleanse(k, sizeof(gcm_key_data)); }

void ImbGcmKeyFree(void* k) {
  if (k == nullptr) return;
  ImbGcmKeyWipe(k);
  free(k);
}

void ImbGcmKeySet(Imb* m, void* k, const uint8_t key[16]) { IMB_AES128_GCM_PRE(m->mgr, key, static_cast<gcm_key_data*>(k)); }

void ImbGcmSeal(Imb* m, const void* k, const uint8_t nonce[12], const uint8_t* aad, size_t aad_len, uint8_t* data, size_t n, uint8_t tag[16]) {
  gcm_context_data ctx;
  IMB_AES128_GCM_ENC(m->mgr, static_cast<const gcm_key_data*>(k), &ctx, data, data, n, nonce, aad, aad_len, tag, 16);
}

bool ImbGcmOpen(Imb* m, const void* k, const uint8_t nonce[12], const uint8_t* aad, size_t aad_len, uint8_t* data, size_t n, const uint8_t tag[16]) {
  gcm_context_data ctx;
  uint8_t want[16];
  // The library computes the tag; comparing it is the caller's part, in constant time (OpenSSL's).
  IMB_AES128_GCM_DEC(m->mgr, static_cast<const gcm_key_data*>(k), &ctx, data, data, n, nonce, aad, aad_len, want, 16);
  return CRYPTO_memcmp(want, tag, 16) == 0;
}

// One ChaCha20-Poly1305 job, submitted and completed before returning (nothing stays queued in the
// manager: the datagram's buffer is the caller's again when this returns).
static bool ChachaJob(Imb* m, bool seal, const uint8_t* key, const uint8_t* nonce, const uint8_t* aad, size_t aad_len, uint8_t* data, size_t n,
                      uint8_t tag[16]) {
  IMB_MGR* mgr = m->mgr;
  IMB_JOB* j = IMB_GET_NEXT_JOB(mgr);
  j->cipher_direction = seal ? IMB_DIR_ENCRYPT : IMB_DIR_DECRYPT;
  j->chain_order = seal ? IMB_ORDER_CIPHER_HASH : IMB_ORDER_HASH_CIPHER;
  j->cipher_mode = IMB_CIPHER_CHACHA20_POLY1305;
  j->hash_alg = IMB_AUTH_CHACHA20_POLY1305;
  j->enc_keys = key;
  j->dec_keys = key;
  j->key_len_in_bytes = 32;
  j->src = data;
  j->dst = data;
  j->cipher_start_src_offset_in_bytes = 0;
  j->msg_len_to_cipher_in_bytes = n;
  j->hash_start_src_offset_in_bytes = 0;
  j->msg_len_to_hash_in_bytes = n;
  j->iv = nonce;
  j->iv_len_in_bytes = 12;
  j->u.CHACHA20_POLY1305.aad = aad;
  j->u.CHACHA20_POLY1305.aad_len_in_bytes = aad_len;
  j->auth_tag_output = tag;
  j->auth_tag_output_len_in_bytes = 16;
  // Nothing else is ever queued in this manager, so the job comes back from the submit or the
  // first flush; a flush that returns nothing would mean it is lost: refuse the datagram.
  IMB_JOB* done = IMB_SUBMIT_JOB(mgr);
  while (done != j && (done = IMB_FLUSH_JOB(mgr)) != nullptr) {
  }
  return done == j && j->status == IMB_STATUS_COMPLETED;
}

bool ImbChachaSeal(Imb* m, const uint8_t key[32], const uint8_t nonce[12], const uint8_t* aad, size_t aad_len, uint8_t* data, size_t n,
                   uint8_t tag[16]) {
  return ChachaJob(m, true, key, nonce, aad, aad_len, data, n, tag);
}

bool ImbChachaOpen(Imb* m, const uint8_t key[32], const uint8_t nonce[12], const uint8_t* aad, size_t aad_len, uint8_t* data, size_t n,
                   const uint8_t tag[16]) {
  uint8_t want[16];
  return ChachaJob(m, false, key, nonce, aad, aad_len, data, n, want) && CRYPTO_memcmp(want, tag, 16) == 0;
}

}  // namespace sluice

#else  // built without <intel-ipsec-mb.h>: OpenSSL everywhere

namespace sluice {

struct Imb {};

Imb* ImbNew(const char** why) {
  if (why != nullptr) *why = "built without intel-ipsec-mb.h";
  return nullptr;
}
void ImbFree(Imb*) {}
const char* ImbArch(const Imb*) { return "none"; }
void* ImbGcmKeyNew() { return nullptr; }
void ImbGcmKeyFree(void*) {}
void ImbGcmKeyWipe(void*) {}
void ImbGcmKeySet(Imb*, void*, const uint8_t*) {}
void ImbGcmSeal(Imb*, const void*, const uint8_t*, const uint8_t*, size_t, uint8_t*, size_t, uint8_t*) {}
bool ImbGcmOpen(Imb*, const void*, const uint8_t*, const uint8_t*, size_t, uint8_t*, size_t, const uint8_t*) { return false; }
bool ImbChachaSeal(Imb*, const uint8_t*, const uint8_t*, const uint8_t*, size_t, uint8_t*, size_t, uint8_t*) { return false; }
bool ImbChachaOpen(Imb*, const uint8_t*, const uint8_t*, const uint8_t*, size_t, uint8_t*, size_t, const uint8_t*) { return false; }

}  // namespace sluice

#endif
