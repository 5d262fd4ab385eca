// N-API surface of the trunk (stream-trunk.h), registered beside the stream engine's table.
// Attach, expect and drop return 0 or -errno instead of throwing: a trunk that is gone is an
// ordinary outcome (the caller falls back to the multiplexed path), not an error.
#include "stream-trunk.h"
#include "stream-internal.h"
#include "stream-sealed.h"
#include "napi-util.h"

#include <errno.h>

namespace sluice {

void TrunkStats(StreamEngine* e, int tid, double* out);

namespace {

napi_value Int(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

// An id of the engine's table, else -1.
int IdOf(napi_env env, StreamEngine* e, napi_value v) {
  int32_t id = -1;
  if (napi_get_value_int32(env, v, &id) != napi_ok || id < 0 || id >= static_cast<int>(e->conns.size()) || e->conns[id].fd < 0) return -1;
  return id;
}

bool U32(napi_env env, napi_value v, uint32_t* out) {
  double d = -1;
  if (napi_get_value_double(env, v, &d) != napi_ok || !(d >= 0) || d > 4294967295.0 || d != static_cast<double>(static_cast<uint32_t>(d))) return false;
  *out = static_cast<uint32_t>(d);
  return true;
}

// streamTrunkStart(engine, conn, keys (56 bytes, as streamPipeSealed's), sealSeq, openSeq, pending?)
napi_value Start(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  size_t argc = 6;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 5) {
    napi_throw_type_error(env, nullptr, "missing arguments");
    return nullptr;
  }
  StreamEngine* e = LiveStreamEngine(env, argv[0]);
  if (e == nullptr) return nullptr;
  int conn = IdOf(env, e, argv[1]);
  const uint8_t *keys = nullptr, *pending = nullptr;
  size_t keys_len = 0, pending_len = 0;
  double seal = -1, open = -1;
  napi_get_value_double(env, argv[3], &seal);
  napi_get_value_double(env, argv[4], &open);
  if (conn < 0 || e->conns[conn].kind != Kind::Held || !OptionalBytes(env, argv[2], &keys, &keys_len) || keys_len != kSealedKeysLen || !(seal >= 0) || !(open >= 0) ||
      seal > 9007199254740991.0 || open > 9007199254740991.0 || (argc > 5 && !OptionalBytes(env, argv[5], &pending, &pending_len)) || pending_len > kTrunkIn) {
    napi_throw_type_error(env, nullptr, "streamTrunkStart(engine, held conn, keys: 56-byte Uint8Array, sealSeq, openSeq, pending?: <= 262144 bytes)");
    return nullptr;
  }
  int err = TrunkStart(e, conn, keys, static_cast<uint64_t>(seal), static_cast<uint64_t>(open), pending, pending_len);
  if (err < 0) napi_throw(env, ErrnoError(env, -err, err == -ENOTSUP ? "EVP_aes_128_gcm" : "epoll_ctl", ""));
  return nullptr;
}

// streamTrunkExpect(engine, trunk, sid) and streamTrunkDrop(engine, trunk, sid) -> 0 | -errno.
template <int (*Op)(StreamEngine*, int, uint32_t)>
napi_value OnStream(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!Args(env, info, 3, argv)) return nullptr;
  StreamEngine* e = LiveStreamEngine(env, argv[0]);
  if (e == nullptr) return nullptr;
  int trunk = IdOf(env, e, argv[1]);
  uint32_t sid;
  if (!U32(env, argv[2], &sid)) {
    napi_throw_type_error(env, nullptr, "streamTrunkExpect / streamTrunkDrop(engine, trunk, stream id: u32)");
    return nullptr;
  }
  int r = trunk < 0 ? -ENOTCONN : Op(e, trunk, sid);
  TrunkFlushDirty(e);  // a drop's RESET
  return Int(env, r);
}

// streamTrunkAttach(engine, trunk, sid, plain, idleMs, expected, first?) -> 0 | -errno
napi_value Attach(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  size_t argc = 7;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 6) {
    napi_throw_type_error(env, nullptr, "missing arguments");
    return nullptr;
  }
  StreamEngine* e = LiveStreamEngine(env, argv[0]);
  if (e == nullptr) return nullptr;
  int trunk = IdOf(env, e, argv[1]);
  int plain = IdOf(env, e, argv[3]);
  uint32_t sid;
  int32_t idle = -1;
  bool expected = false;
  const uint8_t* first = nullptr;
  size_t first_len = 0;
  if (!U32(env, argv[2], &sid) || napi_get_value_int32(env, argv[4], &idle) != napi_ok || idle < 0 || napi_get_value_bool(env, argv[5], &expected) != napi_ok ||
      (argc > 6 && !OptionalBytes(env, argv[6], &first, &first_len))) {
    napi_throw_type_error(env, nullptr, "streamTrunkAttach(engine, trunk, stream id: u32, plain, idleMs, expected: boolean, first?: Uint8Array)");
    return nullptr;
  }
  if (plain < 0 || e->conns[plain].kind != Kind::Held) {
    napi_throw_error(env, "SLUICE_NATIVE", "only a held connection can be attached to a trunk");
    return nullptr;
  }
  int r = trunk < 0 ? -ENOTCONN : TrunkAttach(e, trunk, sid, plain, static_cast<uint32_t>(idle), expected, first, first_len);
  TrunkFlushDirty(e);
  return Int(env, r);
}

// streamTrunkStats(engine, trunk) -> [streams, bytes received not yet written to plain sides,
// sealed bytes waiting for the trunk socket, frames sealed and opened]; -1s for a trunk that is gone.
napi_value Stats(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!Args(env, info, 2, argv)) return nullptr;
  StreamEngine* e = LiveStreamEngine(env, argv[0]);
  if (e == nullptr) return nullptr;
  int trunk = IdOf(env, e, argv[1]);
  double out[4] = {-1, -1, -1, -1};
  if (trunk >= 0) TrunkStats(e, trunk, out);
  napi_value arr;
  napi_create_array_with_length(env, 4, &arr);
  for (uint32_t i = 0; i < 4; i++) napi_set_element(env, arr, i, Int(env, out[i]));
  return arr;
}

}  // namespace

void RegisterStreamTrunk(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"streamTrunkStart", nullptr, Start, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"streamTrunkExpect", nullptr, OnStream<TrunkExpect>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"streamTrunkAttach", nullptr, Attach, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"streamTrunkDrop", nullptr, OnStream<TrunkDrop>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"streamTrunkStats", nullptr, Stats, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}

}  // namespace sluice
