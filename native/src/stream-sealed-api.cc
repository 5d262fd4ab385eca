// N-API surface of the sealed pair (stream-sealed.h), in the stream engine's table (stream-api.cc).
#include "stream-sealed.h"
#include "stream-internal.h"
#include "napi-util.h"

#include <errno.h>
#include <string.h>

namespace sluice {

StreamEngine* LiveStreamEngine(napi_env env, napi_value v) {
  void* p = nullptr;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == nullptr) {
    napi_throw_type_error(env, nullptr, "not a stream engine");
    return nullptr;
  }
  StreamEngine* e = static_cast<StreamEngine*>(p);
  if (e->destroyed) {
    napi_throw_error(env, "SLUICE_NATIVE", "stream engine destroyed");
    return nullptr;
  }
  return e;
}

// Optional bytes: undefined gives none; anything else must be a Uint8Array.
bool OptionalBytes(napi_env env, napi_value v, const uint8_t** data, size_t* len) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  *data = nullptr;
  *len = 0;
  if (t == napi_undefined) return true;
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  void* p;
  if (napi_get_typedarray_info(env, v, &type, len, &p, &ab, &offset) != napi_ok || type != napi_uint8_array) return false;
  *data = static_cast<const uint8_t*>(p);
  return true;
}

namespace {

// A held connection's id, else -1 after throwing.
int HeldConn(napi_env env, StreamEngine* e, napi_value v) {
  int32_t id = -1;
  napi_get_value_int32(env, v, &id);
  if (id < 0 || id >= static_cast<int>(e->conns.size()) || e->conns[id].fd < 0 || e->conns[id].kind != Kind::Held) {
    napi_throw_error(env, "SLUICE_NATIVE", "only two held connections can be joined");
    return -1;
  }
  return id;
}

// A non-negative integer below 2^53 (a sequence number or a limit), else -1.
double Count(napi_env env, napi_value v) {
  double d = -1;
  if (napi_get_value_double(env, v, &d) != napi_ok || !(d >= 0) || d > 9007199254740991.0 || d != static_cast<double>(static_cast<uint64_t>(d))) return -1;
  return d;
}

}  // namespace

// streamPipeSealed(engine, plain, sealed, keys (56 bytes: seal key | seal iv | open key | open iv),
// sealSeq, openSeq, idleMs, plainFirst?, sealedFirst?): the pair's bytes move in the engine from
// now on. plainFirst: plaintext already read from `plain` (sealed first, at most 65536 bytes);
// sealedFirst: bytes already read from `sealed` after its hello (opened first); keep: true keeps
// `sealed` after a clean end (stream-sealed-keep.cc).
napi_value SealedPipeApi(napi_env env, napi_callback_info info) {
  napi_value argv[10];
  size_t argc = 10;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 7) {
    napi_throw_type_error(env, nullptr, "missing arguments");
    return nullptr;
  }
  StreamEngine* e = LiveStreamEngine(env, argv[0]);
  if (e == nullptr) return nullptr;
  int plain = HeldConn(env, e, argv[1]);
  if (plain < 0) return nullptr;
  int sealed = HeldConn(env, e, argv[2]);
  if (sealed < 0) return nullptr;
  if (plain == sealed) {
    napi_throw_error(env, "SLUICE_NATIVE", "only two held connections can be joined");
    return nullptr;
  }
  napi_typedarray_type type;
  size_t keys_len = 0, offset, first_len = 0, pending_len = 0;
  void* keys;
  napi_value ab;
  const uint8_t *first = nullptr, *pending = nullptr;
  double seal_seq = Count(env, argv[4]), open_seq = Count(env, argv[5]);
  int32_t idle = 0;
  if (napi_get_typedarray_info(env, argv[3], &type, &keys_len, &keys, &ab, &offset) != napi_ok || type != napi_uint8_array ||
      keys_len != kSealedKeysLen || seal_seq < 0 || open_seq < 0 || napi_get_value_int32(env, argv[6], &idle) != napi_ok || idle < 0 ||
      (argc > 7 && !OptionalBytes(env, argv[7], &first, &first_len)) || (argc > 8 && !OptionalBytes(env, argv[8], &pending, &pending_len)) ||
      first_len > kRecMaxPlain || pending_len > kRecBuffer) {
    napi_throw_type_error(env, nullptr,
                          "streamPipeSealed(engine, plain, sealed, keys: 56-byte Uint8Array, sealSeq, openSeq, idleMs, plainFirst?: <= 65536 bytes, sealedFirst?)");
    return nullptr;
  }
  int err = SealedStart(e, plain, sealed, static_cast<const uint8_t*>(keys), static_cast<uint64_t>(seal_seq), static_cast<uint64_t>(open_seq),
                        static_cast<uint32_t>(idle), first, first_len, pending, pending_len);
  if (err < 0) napi_throw(env, ErrnoError(env, -err, err == -ENOTSUP ? "EVP_aes_128_gcm" : "epoll_ctl", ""));
  bool keep = false;
  if (err == 0 && argc > 9 && napi_get_value_bool(env, argv[9], &keep) == napi_ok && keep) SealedKeep(e, plain);
  return nullptr;
}

// streamSealedLimits(engine, maxRecords, maxBytes): records and plaintext bytes a sealer sends
// under one key before KEY_UPDATE, for pairs joined from now on and those running. For tests: the
// defaults (2^24 records, 2^36 bytes, docs/tunnel-protocol.md) are the protocol's limits.
napi_value SealedLimitsApi(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!Args(env, info, 3, argv)) return nullptr;
  StreamEngine* e = LiveStreamEngine(env, argv[0]);
  if (e == nullptr) return nullptr;
  double records = Count(env, argv[1]), bytes = Count(env, argv[2]);
  if (records < 3 || records > 16777216.0 || bytes < 1 || bytes > 68719476736.0) {
    napi_throw_range_error(env, nullptr, "streamSealedLimits: maxRecords in 3..2^24, maxBytes in 1..2^36");
    return nullptr;
  }
  e->sealed_max_records = static_cast<uint64_t>(records);
  e->sealed_max_bytes = static_cast<uint64_t>(bytes);
  return nullptr;
}

// streamRecordCipher(engine[, use: 'openssl' | 'ipsec-mb']) -> { cipher, arch, missing }: which
// AES-128-GCM the records of pairs and trunks keyed from now on use (sealed-record.h), the code path
// ipsec-mb picked for this CPU ('' without it) and why it is not there ('' when it is). `use`
// 'openssl' keeps new keys on OpenSSL, 'ipsec-mb' goes back to ipsec-mb where it loaded: for tests,
// which compare the bytes of both. Keys already made keep theirs.
napi_value RecordCipherApi(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  size_t argc = 2;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 1) return nullptr;
  StreamEngine* e = LiveStreamEngine(env, argv[0]);
  if (e == nullptr) return nullptr;
  char use[16] = "";
  size_t n = 0;
  if (argc >= 2 && napi_get_value_string_utf8(env, argv[1], use, sizeof use, &n) == napi_ok) {
    if (strcmp(use, "openssl") != 0 && strcmp(use, "ipsec-mb") != 0) {
      napi_throw_type_error(env, nullptr, "streamRecordCipher(engine[, 'openssl' | 'ipsec-mb'])");
      return nullptr;
    }
    e->ciphers.openssl_only = strcmp(use, "openssl") == 0;
  }
  const RecordCiphers& rc = e->ciphers;
  napi_value out, cipher, arch, missing;
  napi_create_object(env, &out);
  napi_create_string_utf8(env, RecordCipherName(rc), NAPI_AUTO_LENGTH, &cipher);
  napi_create_string_utf8(env, rc.imb != nullptr ? RecordCipherArch(rc) : "", NAPI_AUTO_LENGTH, &arch);
  napi_create_string_utf8(env, rc.imb_missing != nullptr ? rc.imb_missing : "", NAPI_AUTO_LENGTH, &missing);
  napi_set_named_property(env, out, "cipher", cipher);
  napi_set_named_property(env, out, "arch", arch);
  napi_set_named_property(env, out, "missing", missing);
  return out;
}

}  // namespace sluice
