// N-API surface of the forwarding table (forward.cc): attach the shared memory, install and
// remove entries, pair a reply budget, ask whether an entry is still there. Every call is made on
// the JavaScript thread, as the rest of the engine.
#include "forward.h"

#include <string.h>

namespace sluice {

// ---- N-API ----

Engine* LiveEngine(napi_env env, napi_value v) {
  void* p = nullptr;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == nullptr) return nullptr;
  Engine* e = static_cast<Engine*>(p);
  return e->destroyed ? nullptr : e;
}

bool Typed(napi_env env, napi_value v, napi_typedarray_type want, void** data, size_t* length) {
  napi_typedarray_type type;
  size_t offset;
  napi_value ab;
  return napi_get_typedarray_info(env, v, &type, length, data, &ab, &offset) == napi_ok && type == want;
}

bool Address6(napi_env env, napi_value v, int32_t* out) {
  for (uint32_t i = 0; i < 6; i++) {
    napi_value x;
    if (napi_get_element(env, v, i, &x) != napi_ok || napi_get_value_int32(env, x, &out[i]) != napi_ok) return false;
  }
  return out[1] == 0 || out[1] == 4 || out[1] == 6;
}

int NewEntry(FwdState* f) {
  if (!f->free_ids.empty()) {
    int id = f->free_ids.back();
    f->free_ids.pop_back();
    return id;
  }
  if (static_cast<int>(f->entries.size()) >= f->max) return -1;
  f->entries.emplace_back();
  return static_cast<int>(f->entries.size()) - 1;
}

bool LiveSock(Engine* e, int id) { return id >= 0 && id < static_cast<int>(e->socks.size()) && e->socks[id].fd >= 0; }

namespace {

// forwardAttach(engine, counters: Float64Array, credits: Int32Array, seqs: Float64Array[, gens: Int32Array])
// -> true when it took `gens` (FwdState::gens)
napi_value Attach(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  size_t argc = 5;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 4) {
    napi_throw_type_error(env, nullptr, "missing arguments");
    return nullptr;
  }
  Engine* e = LiveEngine(env, argv[0]);
  if (e == nullptr) return nullptr;
  void *c, *k, *s;
  size_t cn, kn, sn;
  if (!Typed(env, argv[1], napi_float64_array, &c, &cn) || !Typed(env, argv[2], napi_int32_array, &k, &kn) ||
      !Typed(env, argv[3], napi_float64_array, &s, &sn)) {
    napi_throw_type_error(env, nullptr, "forwardAttach(engine, counters: Float64Array, credits: Int32Array, seqs: Float64Array[, gens: Int32Array])");
    return nullptr;
  }
  void* g = nullptr;
  size_t gn = 0;
  if (argc >= 5 && !Typed(env, argv[4], napi_int32_array, &g, &gn)) {
    napi_throw_type_error(env, nullptr, "forwardAttach: gens must be an Int32Array");
    return nullptr;
  }
  FreeForwards(e);
  FwdState* f = new FwdState();
  f->counters = static_cast<double*>(c);
  f->credits = static_cast<int32_t*>(k);
  f->max = static_cast<int>(cn / kFwdCounters < kn ? cn / kFwdCounters : kn);
  f->seqs = static_cast<double*>(s);
  f->seqs_max = static_cast<int>(sn);
  for (int i = 0; i < 3; i++) napi_create_reference(env, argv[i + 1], 1, &f->refs[i]);
  if (g != nullptr) {
    f->gens = static_cast<int32_t*>(g);
    f->gens_max = static_cast<int>(gn);
    napi_create_reference(env, argv[4], 1, &f->refs[3]);
  }
  f->hdrs.resize(e->rx_slots);
  f->iovs.resize(3 * e->rx_slots);
  f->names.resize(e->rx_slots);
  f->wrap.resize(static_cast<size_t>(e->rx_slots) * (kHeader + kTag));
  f->msg_entry.resize(e->rx_slots);
  f->msg_len.resize(e->rx_slots);
  f->msg_wire.resize(e->rx_slots);
  f->sends.resize(e->rx_slots);
  f->cmsg.resize(4 * static_cast<size_t>(e->rx_slots));
  f->send_first.resize(e->rx_slots);
  f->send_count.resize(e->rx_slots);
  e->fwd = f;
  napi_value out;
  napi_get_boolean(env, f->gens != nullptr, &out);
  return out;
}

// forwardSeal(engine, inSock, src[6], outSock, dst[6], sealSlot, peerKeyId, tag, maxLen) -> entry or -1
napi_value AddSeal(napi_env env, napi_callback_info info) {
  napi_value argv[9];
  if (!Args(env, info, 9, argv)) return nullptr;
  Engine* e = LiveEngine(env, argv[0]);
  if (e == nullptr || e->fwd == nullptr) return Int(env, -1);
  Fwd x;
  x.seal = true;
  uint32_t peer, tag;
  if (napi_get_value_int32(env, argv[1], &x.in_sock) != napi_ok || !Address6(env, argv[2], x.src) ||
      napi_get_value_int32(env, argv[3], &x.out_sock) != napi_ok || !Address6(env, argv[4], x.dst) ||
      napi_get_value_int32(env, argv[5], &x.seal_slot) != napi_ok || napi_get_value_uint32(env, argv[6], &peer) != napi_ok ||
      napi_get_value_uint32(env, argv[7], &tag) != napi_ok || napi_get_value_int32(env, argv[8], &x.max_len) != napi_ok) {
    napi_throw_type_error(env, nullptr, "forwardSeal(engine, inSock, src, outSock, dst, sealSlot, peerKeyId, tag, maxLen)");
    return nullptr;
  }
  x.peer_key = peer;
  x.tag_out = tag;
  if (!LiveSock(e, x.in_sock) || !LiveSock(e, x.out_sock) || !SealSlotLive(e, x.seal_slot) || x.seal_slot >= e->fwd->seqs_max) return Int(env, -1);
  if (!e->socks[x.in_sock].listener) memset(x.src, 0, sizeof x.src);
  FwdState* f = e->fwd;
  x.key = SourceKey(x.in_sock, x.src);
  if (f->by_src.count(x.key) != 0) return Int(env, -1);
  int id = NewEntry(f);
  if (id < 0) return Int(env, -1);
  x.used = true;
  f->entries[id] = x;
  f->by_src[x.key] = id;
  memset(f->counters + id * kFwdCounters, 0, kFwdCounters * sizeof(double));
  f->credits[id] = 0;
  return Int(env, id);
}

// forwardPlain(engine, openSlot, tag, src[6] (family 0: any source), outSock, dst[6], maxLen) -> entry or -1
napi_value AddPlain(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!Args(env, info, 7, argv)) return nullptr;
  Engine* e = LiveEngine(env, argv[0]);
  if (e == nullptr || e->fwd == nullptr) return Int(env, -1);
  Fwd x;
  uint32_t tag;
  if (napi_get_value_int32(env, argv[1], &x.open_slot) != napi_ok || napi_get_value_uint32(env, argv[2], &tag) != napi_ok ||
      !Address6(env, argv[3], x.src) || napi_get_value_int32(env, argv[4], &x.out_sock) != napi_ok || !Address6(env, argv[5], x.dst) ||
      napi_get_value_int32(env, argv[6], &x.max_len) != napi_ok) {
    napi_throw_type_error(env, nullptr, "forwardPlain(engine, openSlot, tag, src, outSock, dst, maxLen)");
    return nullptr;
  }
  x.tag_in = tag;
  x.check_src = x.src[1] != 0;
  if (!LiveSock(e, x.out_sock) || !OpenSlotLive(e, x.open_slot)) return Int(env, -1);
  if (e->socks[x.out_sock].listener == (x.dst[1] == 0)) return Int(env, -1);
  FwdState* f = e->fwd;
  x.key = TagKey(x.open_slot, tag);
  if (f->by_tag.count(x.key) != 0) return Int(env, -1);
  int id = NewEntry(f);
  if (id < 0) return Int(env, -1);
  x.used = true;
  f->entries[id] = x;
  f->by_tag[x.key] = id;
  memset(f->counters + id * kFwdCounters, 0, kFwdCounters * sizeof(double));
  f->credits[id] = -1;  // toward the plain side nothing is budgeted per datagram (the reply budget is in bytes)
  return Int(env, id);
}

// forwardPair(engine, sealEntry, plainEntry, ratio): the plain entry forwards at most `ratio`
// times the bytes the seal entry received (plus the allowance JavaScript sets in counters[3]).
napi_value PairCall(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!Args(env, info, 4, argv)) return nullptr;
  Engine* e = LiveEngine(env, argv[0]);
  int32_t a, b;
  double ratio;
  if (e == nullptr || e->fwd == nullptr || napi_get_value_int32(env, argv[1], &a) != napi_ok || napi_get_value_int32(env, argv[2], &b) != napi_ok ||
      napi_get_value_double(env, argv[3], &ratio) != napi_ok)
    return nullptr;
  FwdState* f = e->fwd;
  int n = static_cast<int>(f->entries.size());
  if (a < 0 || a >= n || b < 0 || b >= n || !f->entries[a].used || !f->entries[b].used || !f->entries[a].seal || f->entries[b].seal) return nullptr;
  if (f->entries[a].pair >= 0) f->entries[f->entries[a].pair].paired_by = -1;
  if (f->entries[b].paired_by >= 0) f->entries[f->entries[b].paired_by].pair = -1;
  f->entries[a].pair = b;
  f->entries[a].ratio = ratio;
  f->entries[b].budgeted = true;
  f->entries[b].paired_by = a;
  return nullptr;
}

// forwardRemove(engine, entry): idempotent; its counters stay readable until the id is reused.
napi_value RemoveCall(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!Args(env, info, 2, argv)) return nullptr;
  Engine* e = LiveEngine(env, argv[0]);
  int32_t id;
  if (e == nullptr || e->fwd == nullptr || napi_get_value_int32(env, argv[1], &id) != napi_ok) return nullptr;
  if (id >= 0 && id < static_cast<int>(e->fwd->entries.size())) RemoveForward(e->fwd, id);
  return nullptr;
}

// forwardLive(engine, entry) -> whether the entry is still installed (a socket close or a key
// release removes the entries that use them).
napi_value LiveCall(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!Args(env, info, 2, argv)) return nullptr;
  Engine* e = LiveEngine(env, argv[0]);
  int32_t id = -1;
  bool live = false;
  if (e != nullptr && e->fwd != nullptr && napi_get_value_int32(env, argv[1], &id) == napi_ok)
    live = id >= 0 && id < static_cast<int>(e->fwd->entries.size()) && e->fwd->entries[id].used;
  napi_value out;
  napi_get_boolean(env, live, &out);
  return out;
}

}  // namespace

void RegisterForward(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"forwardAttach", nullptr, Attach, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"forwardSeal", nullptr, AddSeal, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"forwardPlain", nullptr, AddPlain, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"forwardPair", nullptr, PairCall, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"forwardRemove", nullptr, RemoveCall, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"forwardLive", nullptr, LiveCall, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  RegisterForwardPool(env, exports);
  RegisterForwardTag(env, exports);
}

}  // namespace sluice
