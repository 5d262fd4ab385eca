// Framed seal entries of the forwarding table (docs/datapath.md, "Peer paths in the batch"): a
// direct peer path carries each tunnel datagram behind ICE's one-byte data prefix (0x0b,
// ice/channel.ts) on the agent's gateway socket. The entry's datagram is sealed as any other
// (forward.cc), and its first iovec holds the prefix and the header from the `framed` scratch, so
// the bytes on the wire are the JavaScript framing's. The opening side needs nothing here: a key
// bound from an ICE datagram opens only those (seal.cc), and forward.cc skips the prefix.
#include "forward.h"

namespace sluice {
namespace {

Engine* LiveEngine(napi_env env, napi_value v) {
  void* p = nullptr;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == nullptr) return nullptr;
  Engine* e = static_cast<Engine*>(p);
  return e->destroyed ? nullptr : e;
}

// forwardFrame(engine, sealEntry, byte) -> whether the entry now sends `byte` (1-255) before each
// datagram. False for anything but an installed seal entry.
napi_value FrameCall(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!Args(env, info, 3, argv)) return nullptr;
  Engine* e = LiveEngine(env, argv[0]);
  int32_t id = -1, byte = 0;
  bool ok = false;
  if (e != nullptr && e->fwd != nullptr && napi_get_value_int32(env, argv[1], &id) == napi_ok &&
      napi_get_value_int32(env, argv[2], &byte) == napi_ok && byte > 0 && byte < 256) {
    FwdState* f = e->fwd;
    if (id >= 0 && id < static_cast<int>(f->entries.size()) && f->entries[id].used && f->entries[id].seal) {
      if (f->framed.empty()) f->framed.resize(static_cast<size_t>(e->rx_slots) * kFrameWrap);
      f->entries[id].frame = static_cast<uint8_t>(byte);
      ok = true;
    }
  }
  napi_value out;
  napi_get_boolean(env, ok, &out);
  return out;
}

}  // namespace

void RegisterForwardFrame(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"forwardFrame", nullptr, FrameCall, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, 1, props);
}

}  // namespace sluice
