// Tunnel datagrams sealed and opened in the batch (docs/datapath.md, "Sealed datagrams in the
// batch"): the wire format of src/protocol/tunnel/ (16-byte header as associated data,
// ChaCha20-Poly1305 with the 12-byte nonce u32 direction | u16 0 | u48 sequence, 16-byte tag) and
// its replay window (replay-window.ts, RFC 6479), byte for byte. The cipher is Node's own OpenSSL
// (ChaCha20-Poly1305 through aead.cc, resolved from the node binary at load time): no crypto of
// our own.
//
// Key slots belong to the engine. A sealing slot seals records staged with flag bit 1 when the
// batch is flushed (the header, sequence included, is written by JavaScript, which owns the
// counter). An opening slot is bound to (socket, key id) and opens, in place in the receive slot,
// every datagram of that socket carrying that key id as soon as it is harvested; its verdict is
// written to the `openm` record of the slot: [key slot or -1, verdict, newest]. A key whose owner
// counts drops in batches has its too-old, replayed and forged datagrams dropped right there: the
// record goes to no socket, and `drops` counts them ([0] all, then 3 per slot by reason), which
// JavaScript folds into its counters once per batch. A datagram that
// starts with ICE's data prefix byte (0x0b, the direct peer path: ice/channel.ts) is opened after it.
// Everything runs on the JavaScript thread, as the rest of the engine.
#include "engine.h"

#include "aead.h"
#include <openssl/crypto.h>
#include <string.h>

#include <unordered_map>

namespace sluice {

constexpr int kOpenRec = 3;
constexpr int kHeader = 16;
constexpr int kTag = 16;
constexpr uint8_t kIceDataPrefix = 0x0b;
// Verdicts; src/datapath/native/tunnel-keys.ts maps them to DatagramRejectReason.
enum Verdict { kOk = 1, kTooOld = 2, kReplayed = 3, kAuthFailed = 4, kBadPlaintext = 5, kKeyExhausted = 6 };

struct KeySlot {
  bool used = false;
  bool opener = false;
  Aead aead;
  uint8_t nonce[12] = {};  // direction | 0 | sequence (set per datagram)
  uint32_t key_id = 0;
  int sock = -1;  // the socket this opener is bound to, -1 when none
  // Pinned to one source: only datagrams from the address it was bound from are opened in the
  // harvest (the agent takes tunnel datagrams from its gateway only). rx record fields 2-7.
  bool pin = false;
  int32_t source[6] = {};
  // Bound from a datagram behind ICE's data prefix: only such datagrams are opened in the harvest.
  bool ice = false;
  bool drop = false;  // too-old, replayed and forged datagrams are dropped and counted in the harvest
  // Replay window (opener): blocks of 32 bits, blocks = size / 32 + 1.
  std::vector<uint32_t> ring;
  int64_t size = 0;
  int64_t top = -1;
  double auth_failures = 0;
  double max_auth_failures = 0;
};

struct SealState {
  std::vector<KeySlot> slots;
  std::vector<int> free_slots;
  std::unordered_map<uint64_t, int> bound;  // socket << 32 | key id -> slot
  int32_t* openm = nullptr;
  int openm_max = 0;
  napi_ref openm_ref = nullptr;
  int32_t* drops = nullptr;
  int drops_max = 0;  // slots that have drop counters
  napi_ref drops_ref = nullptr;
  // ipsec-mb, OpenSSL's provider functions or EVP for new keys (aead.h), resolved at the first key.
  AeadPaths paths;
};

static inline uint64_t BindKey(int sock, uint32_t key_id) { return (static_cast<uint64_t>(sock) << 32) | key_id; }
static inline uint32_t Be32(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }
static inline int64_t Be48(const uint8_t* p) {
  int64_t v = 0;
  for (int i = 0; i < 6; i++) v = (v << 8) | p[i];
  return v;
}

static void Unbind(SealState* s, KeySlot& k) {
  if (k.sock < 0) return;
  auto it = s->bound.find(BindKey(k.sock, k.key_id));
  if (it != s->bound.end() && &s->slots[it->second] == &k) s->bound.erase(it);
  k.sock = -1;
}

static void FreeSlot(SealState* s, int id) {
  KeySlot& k = s->slots[id];
  if (!k.used) return;
  Unbind(s, k);
  AeadFree(&k.aead);
  k = KeySlot();
  s->free_slots.push_back(id);
}

// A closed socket's id is reused by the next socket: no key may stay bound to it (a new listener
// must never get a genuine tunnel datagram opened in place).
void UnbindSocket(Engine* e, int sock) {
  SealState* s = e->seal;
  if (s == nullptr || s->bound.empty()) return;
  for (KeySlot& k : s->slots)
    if (k.used && k.sock == sock) Unbind(s, k);
}

void FreeSeal(Engine* e) {
  SealState* s = e->seal;
  if (s == nullptr) return;
  for (size_t i = 0; i < s->slots.size(); i++) FreeSlot(s, static_cast<int>(i));
  if (s->openm_ref != nullptr) napi_delete_reference(e->env, s->openm_ref);
  if (s->drops_ref != nullptr) napi_delete_reference(e->env, s->drops_ref);
  AeadPathsFree(s->paths);
  delete s;
  e->seal = nullptr;
}

static KeySlot* Slot(Engine* e, int id, bool opener) {
  SealState* s = e->seal;
  if (s == nullptr || id < 0 || id >= static_cast<int>(s->slots.size())) return nullptr;
  KeySlot& k = s->slots[id];
  return k.used && k.opener == opener ? &k : nullptr;
}

// ---- the datagram rules (datagram-header.ts readUnverifiedHeader, replay-window.ts) ----

// The header rules checked before any crypto; false for what readUnverifiedHeader refuses.
static bool HeaderOk(const uint8_t* d, int len) {
  if (len < kHeader + kTag) return false;
  uint8_t type = d[0], flags = d[1];
  uint32_t tag = Be32(d + 6);
  if (type == 0x0c) return (flags == 0 || flags == 1 || flags == 3) && tag != 0;
  if (type == 0x0d || type == 0x0e) return flags == 0 && tag == 0;
  return false;
}

static int WindowCheck(const KeySlot& k, int64_t seq) {
  if (seq > k.top) return kOk;
  if (k.top - seq >= k.size) return kTooOld;
  int64_t block = seq / 32;
  int bit = static_cast<int>(seq - block * 32);
  return (k.ring[block % k.ring.size()] >> bit) & 1 ? kReplayed : kOk;
}

static void WindowAccept(KeySlot& k, int64_t seq) {
  int64_t blocks = static_cast<int64_t>(k.ring.size());
  int64_t block = seq / 32;
  if (seq > k.top) {
    int64_t top_block = k.top < 0 ? -1 : k.top / 32;
    int64_t advance = block - top_block < blocks ? block - top_block : blocks;
    for (int64_t i = 0; i < advance; i++) k.ring[(block - i) % blocks] = 0;
    k.top = seq;
  }
  k.ring[block % blocks] |= 1u << static_cast<int>(seq - block * 32);
}

// The plaintext layout: keepalives carry a u32; data with flag bit 0 starts with an origin block
// (u16 service | u8 family 4 or 6 | u16 port | 4 or 16 address bytes), with flag bit 1 followed
// by the u16 public port of a range service.
static bool PlaintextOk(const uint8_t* d, int plain) {
  if (d[0] != 0x0c) return plain == 4;
  if ((d[1] & 1) == 0) return true;
  if (plain < 5) return false;
  int extra = (d[1] & 2) ? 2 : 0;
  uint8_t family = d[kHeader + 2];
  if (family == 4) return plain >= 9 + extra;
  if (family == 6) return plain >= 21 + extra;
  return false;
}

// Opens datagram `d` of `len` bytes in place under `k` (key id already matched). Returns the
// verdict; `newest` is set when it raised the highest accepted sequence.
static int OpenInPlace(KeySlot& k, uint8_t* d, int len, bool* newest) {
  *newest = false;
  if (k.auth_failures >= k.max_auth_failures) return kKeyExhausted;
  int64_t seq = Be48(d + 10);
  int v = WindowCheck(k, seq);
  if (v != kOk) return v;
  memcpy(k.nonce + 6, d + 10, 6);
  int plain = len - kHeader - kTag;
  if (!AeadOpen(&k.aead, k.nonce, d, d + kHeader, plain, d + kHeader + plain)) {
    k.auth_failures++;
    return kAuthFailed;
  }
  if (!PlaintextOk(d, plain)) return kBadPlaintext;
  *newest = seq > k.top;
  WindowAccept(k, seq);
  return kOk;
}

static bool SealInPlace(KeySlot& k, uint8_t* d, int len) {
  if (len < kHeader + kTag) return false;
  memcpy(k.nonce + 6, d + 10, 6);
  int plain = len - kHeader - kTag;
  return AeadSeal(&k.aead, k.nonce, d, d + kHeader, plain, d + kHeader + plain);
}

// ---- the batch hooks (engine.cc Harvest, tx.cc Flush) ----

void OpenHarvested(Engine* e, int used) {
  SealState* s = e->seal;
  if (s == nullptr || s->openm == nullptr) return;
  if (used > s->openm_max) used = s->openm_max;
  // The last binding looked up: a socket's datagrams under one key come in runs (valid for this
  // call only; bindings change between harvests, never during one).
  uint64_t last_key = ~0ull;
  int last_slot = -1;
  for (int i = 0; i < used; i++) {
    int32_t* o = s->openm + i * kOpenRec;
    o[0] = -1;
    const int32_t* rec = e->rxm + i * kRxRec;
    int len = rec[1];
    if (s->bound.empty() || len < kHeader + kTag) continue;
    uint8_t* d = e->rx + static_cast<size_t>(i) * kSlotBytes;
    bool ice = d[0] == kIceDataPrefix;
    if (ice) {
      d++;
      len--;
    }
    if (!HeaderOk(d, len)) continue;
    uint64_t key = BindKey(rec[0], Be32(d + 2));
    if (key != last_key) {
      auto it = s->bound.find(key);
      last_key = key;
      last_slot = it == s->bound.end() ? -1 : it->second;
    }
    if (last_slot < 0) continue;
    KeySlot& k = s->slots[last_slot];
    if (k.ice != ice || (k.pin && memcmp(k.source, rec + 2, sizeof k.source) != 0)) continue;
    bool newest;
    int v = OpenInPlace(k, d, len, &newest);
    if (k.drop && (v == kTooOld || v == kReplayed || v == kAuthFailed) && last_slot < s->drops_max) {
      s->drops[0]++;
      s->drops[1 + last_slot * 3 + (v - kTooOld)]++;
      e->rxm[i * kRxRec] = -1;
      continue;
    }
    o[1] = v;
    o[2] = newest ? 1 : 0;
    o[0] = last_slot;
  }
}

void SealStaged(Engine* e, int count) {
  SealState* s = e->seal;
  for (int i = 0; i < count; i++) {
    int32_t* r = e->txm + i * kTxRec;
    if ((r[1] & 2) == 0) continue;
    KeySlot* k = Slot(e, r[10], false);
    uint32_t off = static_cast<uint32_t>(r[2]), len = static_cast<uint32_t>(r[3]);
    r[10] = 0;
    // Never send what could not be sealed: a record without its key (released since it was
    // staged) or outside staging goes to no socket and is dropped by Flush.
    if (s == nullptr || k == nullptr || (r[1] & 1) == 0 || static_cast<size_t>(off) + len > e->tx_bytes ||
        !SealInPlace(*k, e->tx + off, static_cast<int>(len))) {
      r[0] = -1;
    }
  }
}

// ---- for the forwarding table (forward.cc) ----

int OpenedKey(Engine* e, int i) {
  SealState* s = e->seal;
  if (s == nullptr || s->openm == nullptr || i >= s->openm_max) return -1;
  const int32_t* o = s->openm + i * kOpenRec;
  return o[0] >= 0 && o[1] == kOk ? o[0] : -1;
}

bool SealSlotLive(Engine* e, int slot) { return Slot(e, slot, false) != nullptr; }
bool OpenSlotLive(Engine* e, int slot) { return Slot(e, slot, true) != nullptr; }

bool SealParts(Engine* e, int slot, const uint8_t* header, uint8_t* payload, int len, uint8_t* tag) {
  KeySlot* k = Slot(e, slot, false);
  if (k == nullptr) return false;
  memcpy(k->nonce + 6, header + 10, 6);
  return AeadSeal(&k->aead, k->nonce, header, payload, len, tag);
}

// ---- N-API ----

namespace {

napi_value Nothing(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

// The engine, or null (and nothing thrown) when it is gone: releasing a key after destroy is fine.
Engine* LiveEngine(napi_env env, napi_value v) {
  void* p = nullptr;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == nullptr) return nullptr;
  Engine* e = static_cast<Engine*>(p);
  return e->destroyed ? nullptr : e;
}

SealState* State(Engine* e) {
  if (e->seal == nullptr) e->seal = new SealState();
  return e->seal;
}

// Holds `v` (an Int32Array) in `*ref`; its data and length in int32s, or false after throwing.
bool Int32s(napi_env env, napi_value v, napi_ref* ref, int32_t** data, size_t* length) {
  napi_typedarray_type type;
  size_t offset;
  napi_value ab;
  void* p;
  if (napi_get_typedarray_info(env, v, &type, length, &p, &ab, &offset) != napi_ok || type != napi_int32_array) {
    napi_throw_type_error(env, nullptr, "sealAttach(engine, openm: Int32Array, drops: Int32Array)");
    return false;
  }
  if (*ref != nullptr) napi_delete_reference(env, *ref);
  napi_create_reference(env, v, 1, ref);
  *data = static_cast<int32_t*>(p);
  return true;
}

// sealAttach(engine, openm, drops): where opening verdicts go (kOpenRec int32 per rx slot) and
// where drops in the harvest are counted ([0] all, then 3 per key slot).
napi_value Attach(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!Args(env, info, 3, argv)) return nullptr;
  Engine* e = LiveEngine(env, argv[0]);
  if (e == nullptr) return Nothing(env);
  SealState* s = State(e);
  size_t n;
  if (!Int32s(env, argv[1], &s->openm_ref, &s->openm, &n)) return nullptr;
  s->openm_max = static_cast<int>(n / kOpenRec);
  if (!Int32s(env, argv[2], &s->drops_ref, &s->drops, &n)) return nullptr;
  s->drops_max = n < 1 ? 0 : static_cast<int>((n - 1) / 3);
  return Nothing(env);
}

// keyAdd(engine, key: Buffer(32), direction, keyId, window, maxAuthFailures, pinSource, dropInBatch)
// -> slot. keyId 0 (never a receiver's key id) makes a sealing slot; anything else an opening one.
napi_value KeyAdd(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  if (!Args(env, info, 8, argv)) return nullptr;
  Engine* e = LiveEngine(env, argv[0]);
  if (e == nullptr) return Int(env, -1);
  void* key;
  size_t key_len;
  uint32_t direction, key_id;
  int32_t window;
  double max_fail;
  bool pin = false, drop = false;
  napi_get_value_bool(env, argv[6], &pin);
  napi_get_value_bool(env, argv[7], &drop);
  if (napi_get_buffer_info(env, argv[1], &key, &key_len) != napi_ok || key_len != 32 ||
      napi_get_value_uint32(env, argv[2], &direction) != napi_ok || napi_get_value_uint32(env, argv[3], &key_id) != napi_ok ||
      napi_get_value_int32(env, argv[4], &window) != napi_ok || napi_get_value_double(env, argv[5], &max_fail) != napi_ok ||
      (key_id != 0 && (window < 32 || window % 32 != 0 || window > (1 << 20)))) {
    napi_throw_type_error(env, nullptr, "keyAdd(engine, key: 32-byte Buffer, direction, keyId, window, maxAuthFailures, pinSource, dropInBatch)");
    return nullptr;
  }
  SealState* s = State(e);
  bool opener = key_id != 0;
  Aead aead;
  if (!AeadInitFrom(s->paths, &aead, static_cast<uint8_t*>(key), !opener)) {
    napi_throw_error(env, "SLUICE_NATIVE", "OpenSSL has no ChaCha20-Poly1305 here");
    return nullptr;
  }
  int id;
  if (!s->free_slots.empty()) {
    id = s->free_slots.back();
    s->free_slots.pop_back();
  } else {
    id = static_cast<int>(s->slots.size());
    s->slots.emplace_back();
  }
  KeySlot& k = s->slots[id];
  k.used = true;
  k.opener = opener;
  k.aead = aead;
  OPENSSL_cleanse(aead.key, sizeof aead.key);  // the slot holds the key now (ipsec-mb's way)
  k.key_id = key_id;
  k.nonce[0] = static_cast<uint8_t>(direction >> 24);
  k.nonce[1] = static_cast<uint8_t>(direction >> 16);
  k.nonce[2] = static_cast<uint8_t>(direction >> 8);
  k.nonce[3] = static_cast<uint8_t>(direction);
  if (opener) {
    k.size = window;
    k.ring.assign(window / 32 + 1, 0);
    k.max_auth_failures = max_fail;
    k.pin = pin;
    k.drop = drop;
    // A fresh slot starts its drop counters from zero (a released one may have left counts).
    if (id < s->drops_max) memset(s->drops + 1 + id * 3, 0, 3 * sizeof(int32_t));
  }
  return Int(env, id);
}

// keyRelease(engine, slot): idempotent; the slot id may be reused afterwards.
napi_value KeyRelease(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!Args(env, info, 2, argv)) return nullptr;
  Engine* e = LiveEngine(env, argv[0]);
  int32_t id;
  if (e == nullptr || e->seal == nullptr || napi_get_value_int32(env, argv[1], &id) != napi_ok) return Nothing(env);
  if (id >= 0 && id < static_cast<int>(e->seal->slots.size())) {
    ForgetForwards(e, -1, id);
    FreeSlot(e->seal, id);
  }
  return Nothing(env);
}

// openOne(engine, slot, buf, record) -> verdict | newest << 8, or 0 when the header is not this
// key's. Opens `buf` in place: for datagrams that were not opened in the batch (received before
// the key was bound, or relayed through another layer). `record` is the receive record `buf`
// came from, or -1; a datagram of a record that opens binds the key to the record's socket (and
// source, when pinned) so the next batches open it in the harvest.
napi_value OpenOne(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!Args(env, info, 4, argv)) return nullptr;
  Engine* e = LiveEngine(env, argv[0]);
  int32_t id, record;
  void* data;
  size_t len;
  if (e == nullptr || napi_get_value_int32(env, argv[1], &id) != napi_ok || napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok ||
      napi_get_value_int32(env, argv[3], &record) != napi_ok) {
    return Int(env, 0);
  }
  const int32_t* rec = record >= 0 && record < e->rx_slots ? e->rxm + record * kRxRec : nullptr;
  int sock = rec == nullptr ? -1 : rec[0];
  KeySlot* k = Slot(e, id, true);
  uint8_t* d = static_cast<uint8_t*>(data);
  if (k == nullptr || len > 65535 || !HeaderOk(d, static_cast<int>(len)) || Be32(d + 2) != k->key_id) return Int(env, 0);
  bool newest;
  int v = OpenInPlace(*k, d, static_cast<int>(len), &newest);
  if (v == kOk && sock >= 0 && sock < static_cast<int>(e->socks.size()) && k->sock != sock) {
    SealState* s = e->seal;
    auto ins = s->bound.emplace(BindKey(sock, k->key_id), id);
    if (ins.second) {
      Unbind(s, *k);
      k->sock = sock;
      memcpy(k->source, rec + 2, sizeof k->source);
      k->ice = d == e->rx + static_cast<size_t>(record) * kSlotBytes + 1 && d[-1] == kIceDataPrefix;
    }
  }
  return Int(env, v | (newest ? 1 << 8 : 0));
}

// sealPath(engine[, want: 'ipsec-mb' | 'provider' | 'evp']) -> [path, why ipsec-mb is not loaded
// or '']: the way keys added from now on reach ChaCha20-Poly1305 (aead.h): ipsec-mb, OpenSSL's
// provider functions, or EVP. `want` picks the best available at or below it: for tests, which
// compare the bytes of every way. Keys already added keep their way.
napi_value SealPath(napi_env env, napi_callback_info info) {
  static const char* const kNames[] = {"ipsec-mb", "provider", "evp"};
  napi_value argv[2];
  size_t argc = 2;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 1) return nullptr;
  Engine* e = LiveEngine(env, argv[0]);
  if (e == nullptr) return Nothing(env);
  SealState* s = State(e);
  char want[16] = "";
  size_t n = 0;
  if (argc >= 2 && napi_get_value_string_utf8(env, argv[1], want, sizeof want, &n) == napi_ok) {
    int i = 0;
    while (i < 3 && strcmp(want, kNames[i]) != 0) i++;
    if (i == 3) {
      napi_throw_type_error(env, nullptr, "sealPath(engine[, 'ipsec-mb' | 'provider' | 'evp'])");
      return nullptr;
    }
    s->paths.want = static_cast<AeadPath>(i);
  }
  AeadPath now = AeadPathNow(s->paths);
  napi_value out, path, why;
  napi_create_array_with_length(env, 2, &out);
  napi_create_string_utf8(env, kNames[now], NAPI_AUTO_LENGTH, &path);
  napi_create_string_utf8(env, s->paths.imb_missing != nullptr ? s->paths.imb_missing : "", NAPI_AUTO_LENGTH, &why);
  napi_set_element(env, out, 0, path);
  napi_set_element(env, out, 1, why);
  return out;
}

// keyState(engine, slot) -> [highest sequence or -1, authentication failures]
napi_value KeyState(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!Args(env, info, 2, argv)) return nullptr;
  Engine* e = LiveEngine(env, argv[0]);
  int32_t id = -1;
  if (e != nullptr) napi_get_value_int32(env, argv[1], &id);
  KeySlot* k = e == nullptr ? nullptr : Slot(e, id, true);
  napi_value out, top, fails;
  napi_create_array_with_length(env, 2, &out);
  napi_create_double(env, k == nullptr ? -1 : static_cast<double>(k->top), &top);
  napi_create_double(env, k == nullptr ? 0 : k->auth_failures, &fails);
  napi_set_element(env, out, 0, top);
  napi_set_element(env, out, 1, fails);
  return out;
}

}  // namespace

void RegisterSeal(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"sealAttach", nullptr, Attach, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"keyAdd", nullptr, KeyAdd, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"keyRelease", nullptr, KeyRelease, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"openOne", nullptr, OpenOne, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"keyState", nullptr, KeyState, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sealPath", nullptr, SealPath, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}

}  // namespace sluice
