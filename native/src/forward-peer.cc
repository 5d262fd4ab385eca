// Peer-path entries of the forwarding table (docs/datapath.md, "Peer paths in the batch").
//
// Framed seal entries: a
// direct peer path carries each tunnel datagram behind ICE's one-byte data prefix (0x0b,
// ice/channel.ts) on the agent's gateway socket. The entry's datagram is sealed as any other
// (forward.cc), and its first iovec holds the prefix and the header from the `framed` scratch, so
// the bytes on the wire are the JavaScript framing's. The opening side needs nothing here: a key
// bound from an ICE datagram opens only those (seal.cc), and forward.cc skips the prefix.
#include "forward.h"

#include <string.h>

namespace sluice {

// A relayed peer flow at the gateway (docs/datapath.md, "Peer paths in the batch"): a reseal
// entry matches as a plain one (opened under the opener's key slot with the flow's tag, from the
// opener's address) and, instead of sending the plaintext, seals it in place again under the
// target's sealing slot for the target's tag, as JavaScript's open-then-sendData would, with the
// next sequence of the counter that slot shares with JavaScript.
int ResealInto(Engine* e, FwdState* f, const Fwd& x, int m, int iovs, uint8_t* payload, int plain) {
  double* seq = x.seal_slot >= 0 && x.seal_slot < f->seqs_max ? f->seqs + x.seal_slot : nullptr;
  if (seq == nullptr || *seq > kMaxSequence) return 0;
  uint8_t* w = f->wrap.data() + static_cast<size_t>(m) * (kHeader + kTag);
  uint64_t s = static_cast<uint64_t>(*seq);
  const uint32_t words[2] = {x.peer_key, x.tag_out};
  w[0] = 0x0c;  // data, no origin block
  w[1] = 0;
  for (int k = 0; k < 8; k++) w[2 + k] = static_cast<uint8_t>(words[k / 4] >> (8 * (3 - k % 4)));
  for (int k = 0; k < 6; k++) w[10 + k] = static_cast<uint8_t>(s >> (8 * (5 - k)));
  if (!SealParts(e, x.seal_slot, w, payload, plain, w + kHeader)) return -1;
  *seq += 1;
  int n = 0;
  f->iovs[iovs + n++] = {w, static_cast<size_t>(kHeader)};
  if (plain > 0) f->iovs[iovs + n++] = {payload, static_cast<size_t>(plain)};
  f->iovs[iovs + n++] = {w + kHeader, static_cast<size_t>(kTag)};
  return n;
}

namespace {

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

// forwardReseal(engine, openSlot, tagIn, src[6], outSock, dst[6], sealSlot, peerKeyId, tagOut, maxLen)
// -> entry or -1. Credit as for a seal entry (JavaScript sets it; none at install).
napi_value ResealCall(napi_env env, napi_callback_info info) {
  napi_value argv[10];
  if (!Args(env, info, 10, argv)) return nullptr;
  Engine* e = LiveEngine(env, argv[0]);
  if (e == nullptr || e->fwd == nullptr) return Int(env, -1);
  Fwd x;
  uint32_t tag_in, peer, tag_out;
  if (napi_get_value_int32(env, argv[1], &x.open_slot) != napi_ok || napi_get_value_uint32(env, argv[2], &tag_in) != napi_ok ||
      !Address6(env, argv[3], x.src) || napi_get_value_int32(env, argv[4], &x.out_sock) != napi_ok || !Address6(env, argv[5], x.dst) ||
      napi_get_value_int32(env, argv[6], &x.seal_slot) != napi_ok || napi_get_value_uint32(env, argv[7], &peer) != napi_ok ||
      napi_get_value_uint32(env, argv[8], &tag_out) != napi_ok || napi_get_value_int32(env, argv[9], &x.max_len) != napi_ok) {
    napi_throw_type_error(env, nullptr, "forwardReseal(engine, openSlot, tagIn, src, outSock, dst, sealSlot, peerKeyId, tagOut, maxLen)");
    return nullptr;
  }
  FwdState* f = e->fwd;
  int socks = static_cast<int>(e->socks.size());
  if (x.out_sock < 0 || x.out_sock >= socks || e->socks[x.out_sock].fd < 0 || !e->socks[x.out_sock].listener || x.dst[1] == 0 ||
      !OpenSlotLive(e, x.open_slot) || !SealSlotLive(e, x.seal_slot) || x.seal_slot >= f->seqs_max)
    return Int(env, -1);
  x.tag_in = tag_in;
  x.peer_key = peer;
  x.tag_out = tag_out;
  x.check_src = x.src[1] != 0;
  x.reseal = true;
  x.key = TagKey(x.open_slot, tag_in);
  if (f->by_tag.count(x.key) != 0) return Int(env, -1);
  int id;
  if (!f->free_ids.empty()) {
    id = f->free_ids.back();
    f->free_ids.pop_back();
  } else if (static_cast<int>(f->entries.size()) < f->max) {
    id = static_cast<int>(f->entries.size());
    f->entries.emplace_back();
  } else {
    return Int(env, -1);
  }
  x.used = true;
  f->entries[id] = x;
  f->by_tag[x.key] = id;
  memset(f->counters + id * kFwdCounters, 0, kFwdCounters * sizeof(double));
  f->credits[id] = 0;
  return Int(env, id);
}

}  // namespace

void RegisterForwardFrame(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"forwardFrame", nullptr, FrameCall, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"forwardReseal", nullptr, ResealCall, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}

}  // namespace sluice
