// Established tunnel sessions forwarded inside the batch (docs/datapath.md, "Established sessions
// in the batch"): JavaScript installs an entry once it has admitted a session, and from then on
// that session's datagrams are moved here as they are harvested, without a JavaScript call.
//
// Two kinds of entry, one per direction of a session:
//   seal:  a plaintext datagram received on socket `in_sock` (from source `src` on a listener; any
//          datagram on a connected socket) is sealed as a tunnel data datagram for `tag_out` under
//          sealing key slot `seal_slot` (header written here, with the next sequence of the
//          sequence counter that slot shares with JavaScript) and sent from `out_sock` to `dst`.
//   plain: a tunnel data datagram without an origin block, opened in the harvest under opening key
//          slot `open_slot` with tag `tag_in` (from `src` when `check_src`), has its plaintext sent
//          from `out_sock` to `dst` (family 0: `out_sock` is connected).
// Everything the entry cannot decide (no credit left, too large, another source, an origin block,
// no sequence left) is left in the batch for JavaScript, which decides as it always has.
//
// Shared with JavaScript (src/datapath/native/forward-table.ts): per entry, kFwdCounters doubles
// [datagrams, bytes, send errors] that only this file writes, and one int32 of credit that
// JavaScript sets (datagrams this entry may still forward; < 0 without limit) and this file
// decrements; per sealing key slot, the double `seqs[slot]`: the next sequence number. A plain
// entry under a reply budget keeps its allowance in bytes in counters[3], which both sides write
// (JavaScript when it folds the counters into the session's budget windows, here per datagram).
#include "engine.h"

#include <errno.h>
#include <string.h>

#include <unordered_map>
#include <vector>

namespace sluice {

constexpr int kFwdCounters = 4;
constexpr int kHeader = 16;
constexpr int kTag = 16;
constexpr double kMaxSequence = 281474976710655.0;  // 2^48 - 1


struct Fwd {
  bool used = false;
  bool seal = false;
  int in_sock = -1;
  int32_t src[6] = {};  // port, family (0: connected / any), address x4 (rx record fields 2-7)
  bool check_src = false;
  int open_slot = -1;
  uint32_t tag_in = 0;
  int out_sock = -1;
  int32_t dst[6] = {};  // port, family (0: out_sock is connected), address x4
  int seal_slot = -1;
  uint32_t tag_out = 0;
  uint32_t peer_key = 0;
  int max_len = 0;  // largest payload forwarded here; larger ones go to JavaScript
  uint64_t key = 0;
  // Reply budget (core/reply-budget.ts): a seal entry's received bytes raise, by `ratio` each,
  // the allowance (counters[3]) of the plain entry `pair`, which forwards only what fits it.
  int pair = -1;
  double ratio = 0;
  bool budgeted = false;
  int paired_by = -1;  // on a plain entry: the seal entry whose pair it is
};

struct FwdState {
  std::vector<Fwd> entries;
  std::vector<int> free_ids;
  std::unordered_map<uint64_t, int> by_src;  // seal entries
  std::unordered_map<uint64_t, int> by_tag;  // plain entries: open slot << 32 | tag
  double* counters = nullptr;
  int32_t* credits = nullptr;
  int max = 0;
  double* seqs = nullptr;
  int seqs_max = 0;
  napi_ref refs[3] = {};
  // Scratch of one harvest's sends.
  std::vector<mmsghdr> hdrs;
  std::vector<iovec> iovs;
  std::vector<sockaddr_in6> names;
  std::vector<uint8_t> wrap;  // header + tag of each sealed message
  std::vector<int> msg_entry;
  std::vector<int> msg_len;   // payload bytes (what the session counts)
  std::vector<int> msg_wire;  // bytes on the wire
  // Sends built from the datagrams above: runs to one destination become one UDP_SEGMENT send.
  std::vector<mmsghdr> sends;
  std::vector<uint64_t> cmsg;  // 4 words per send
  std::vector<int> send_first;
  std::vector<int> send_count;
};

static inline uint32_t Be32(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }
static inline void PutBe32(uint8_t* p, uint32_t v) {
  p[0] = v >> 24;
  p[1] = v >> 16;
  p[2] = v >> 8;
  p[3] = v;
}

// The lookup key of a seal entry: exact for IPv4 and connected sockets, a hash (checked against
// the entry) for IPv6.
static uint64_t SourceKey(int sock, const int32_t* src) {
  uint64_t k = static_cast<uint64_t>(static_cast<uint32_t>(sock)) << 48;
  if (src[1] == 0) return k;
  if (src[1] == 4) return k ^ (static_cast<uint64_t>(static_cast<uint16_t>(src[0])) << 32) ^ static_cast<uint32_t>(src[2]);
  uint64_t h = 1469598103934665603ull;
  for (int i = 0; i < 6; i++) h = (h ^ static_cast<uint32_t>(src[i])) * 1099511628211ull;
  return k ^ (h & 0xffffffffffffull) ^ (1ull << 47);
}

// Sources as rx records hold them: [port, family, address x4] (IPv4 records zero the rest).
static inline bool SameSource(const int32_t* a, const int32_t* b) { return memcmp(a, b, 6 * sizeof(int32_t)) == 0; }

static inline uint64_t TagKey(int slot, uint32_t tag) { return (static_cast<uint64_t>(slot) << 32) | tag; }

static void Remove(FwdState* f, int id) {
  Fwd& x = f->entries[id];
  if (!x.used) return;
  auto& map = x.seal ? f->by_src : f->by_tag;
  auto it = map.find(x.key);
  if (it != map.end() && it->second == id) map.erase(it);
  if (x.pair >= 0) f->entries[x.pair].paired_by = -1;
  if (x.paired_by >= 0) f->entries[x.paired_by].pair = -1;
  x = Fwd();
  f->credits[id] = 0;
  f->free_ids.push_back(id);
}

void ForgetForwards(Engine* e, int sock, int slot) {
  FwdState* f = e->fwd;
  if (f == nullptr || (f->by_src.empty() && f->by_tag.empty())) return;
  for (size_t i = 0; i < f->entries.size(); i++) {
    const Fwd& x = f->entries[i];
    if (!x.used) continue;
    if ((sock >= 0 && (x.in_sock == sock || x.out_sock == sock)) || (slot >= 0 && (x.seal_slot == slot || x.open_slot == slot)))
      Remove(f, static_cast<int>(i));
  }
}

void FreeForwards(Engine* e) {
  FwdState* f = e->fwd;
  if (f == nullptr) return;
  for (napi_ref r : f->refs)
    if (r != nullptr) napi_delete_reference(e->env, r);
  delete f;
  e->fwd = nullptr;
}

// Appends one message; false when the scratch is full (the datagram stays for JavaScript).
static mmsghdr* NextMessage(Engine* e, FwdState* f, int m, int entry, const Fwd& x, int iovs) {
  const Sock& out = e->socks[x.out_sock];
  mmsghdr& h = f->hdrs[m];
  memset(&h, 0, sizeof h);
  if (x.dst[1] != 0) {
    socklen_t len;
    if (!DestinationOf(out, x.dst, &f->names[m], &len)) return nullptr;
    h.msg_hdr.msg_name = &f->names[m];
    h.msg_hdr.msg_namelen = len;
  }
  h.msg_hdr.msg_iov = &f->iovs[iovs];
  f->msg_entry[m] = entry;
  return &h;
}

static void Sent(FwdState* f, int k) {
  const Fwd& x = f->entries[f->msg_entry[k]];
  double* c = f->counters + f->msg_entry[k] * kFwdCounters;
  c[0] += 1;
  c[1] += f->msg_len[k];
  if (x.pair >= 0) f->counters[x.pair * kFwdCounters + 3] += x.ratio * f->msg_len[k];
}

static void Lost(FwdState* f, int k) { f->counters[f->msg_entry[k] * kFwdCounters + 2] += 1; }

static bool SameDestination(const msghdr& a, const msghdr& b) {
  return a.msg_namelen == b.msg_namelen && (a.msg_namelen == 0 || memcmp(a.msg_name, b.msg_name, a.msg_namelen) == 0);
}

// Sends the harvest's datagrams [i, j) of one socket: runs of equal-sized datagrams to one
// destination as single UDP_SEGMENT sends (as tx.cc does for staged records), the rest as they are.
static void SendGroup(Engine* e, FwdState* f, Sock& out, int i, int j) {
  int n = 0;
  for (int k = i; k < j;) {
    int size = f->msg_wire[k];
    int run = 1, bytes = size;
    if (e->gso && size < out.gso_limit) {
      while (k + run < j && run < kMaxGsoSegments) {
        int q = f->msg_wire[k + run];
        if (q > size || bytes + q > kMaxGsoBytes || !SameDestination(f->hdrs[k].msg_hdr, f->hdrs[k + run].msg_hdr)) break;
        bytes += q;
        run++;
        if (q < size) break;  // only the last segment may be shorter
      }
    }
    mmsghdr& h = f->sends[n];
    h = f->hdrs[k];
    for (int r = 1; r < run; r++) h.msg_hdr.msg_iovlen += f->hdrs[k + r].msg_hdr.msg_iovlen;  // contiguous iovecs
    if (run > 1) PutSegment(&h.msg_hdr, &f->cmsg[n * 4], size);
    f->send_first[n] = k;
    f->send_count[n] = run;
    n++;
    k += run;
  }
  int done = 0;
  while (done < n) {
    int r = sendmmsg(out.fd, &f->sends[done], n - done, 0);
    if (r > 0) {
      for (int m = done; m < done + r; m++)
        for (int k = f->send_first[m]; k < f->send_first[m] + f->send_count[m]; k++) Sent(f, k);
      done += r;
      continue;
    }
    int err = errno;
    if (err == EINTR) continue;
    int first = f->send_first[done], count = f->send_count[done];
    if (count > 1 && GsoRetryable(err)) {
      // This segment size cannot be offloaded here: lower the socket's limit, send one by one.
      if (f->msg_wire[first] < out.gso_limit) out.gso_limit = f->msg_wire[first];
      for (int k = first; k < first + count; k++) {
        int rr;
        while ((rr = sendmsg(out.fd, &f->hdrs[k].msg_hdr, 0)) < 0 && errno == EINTR) {
        }
        if (rr < 0) Lost(f, k);
        else Sent(f, k);
      }
    } else {
      // A full buffer, an ICMP error: these datagrams are lost (counted); the rest are tried again.
      for (int k = first; k < first + count; k++) Lost(f, k);
    }
    done++;
  }
}

static void Send(Engine* e, FwdState* f, int m) {
  for (int i = 0; i < m;) {
    int sock = f->entries[f->msg_entry[i]].out_sock;
    int j = i + 1;
    while (j < m && f->entries[f->msg_entry[j]].out_sock == sock) j++;
    SendGroup(e, f, e->socks[sock], i, j);
    i = j;
  }
}

int ForwardHarvested(Engine* e, int used) {
  FwdState* f = e->fwd;
  if (f == nullptr || (f->by_src.empty() && f->by_tag.empty())) return 0;
  int m = 0, iovs = 0, forwarded = 0;
  int socks = static_cast<int>(e->socks.size());
  for (int i = 0; i < used; i++) {
    int32_t* rec = e->rxm + i * kRxRec;
    int sock = rec[0], len = rec[1];
    if (sock < 0 || sock >= socks || len < 0) continue;
    uint8_t* d = e->rx + static_cast<size_t>(i) * kSlotBytes;
    int open_slot = OpenedKey(e, i);
    int id;
    if (open_slot >= 0) {
      // Opened in place: data (0x0c) without an origin block, never behind ICE's prefix.
      if (d[0] != 0x0c || d[1] != 0) continue;
      auto it = f->by_tag.find(TagKey(open_slot, Be32(d + 6)));
      if (it == f->by_tag.end()) continue;
      id = it->second;
    } else {
      const int32_t* src = rec + 2;
      int32_t none[6] = {};
      if (!e->socks[sock].listener) src = none;
      auto it = f->by_src.find(SourceKey(sock, src));
      if (it == f->by_src.end()) continue;
      id = it->second;
      if (!SameSource(f->entries[id].src, src) || f->entries[id].in_sock != sock) continue;
    }
    Fwd& x = f->entries[id];
    int32_t& credit = f->credits[id];
    if (credit == 0 || x.out_sock >= socks || e->socks[x.out_sock].fd < 0) continue;
    if (!x.seal) {
      if (x.check_src && !SameSource(x.src, rec + 2)) continue;
      int plain = len - kHeader - kTag;
      if (plain > x.max_len) continue;
      double* allowance = f->counters + id * kFwdCounters + 3;
      if (x.budgeted && *allowance < plain) continue;  // JavaScript drops it and counts the drop
      if (x.budgeted) *allowance -= plain;
      mmsghdr* h = NextMessage(e, f, m, id, x, iovs);
      if (h == nullptr) continue;
      f->iovs[iovs] = {d + kHeader, static_cast<size_t>(plain)};
      h->msg_hdr.msg_iovlen = 1;
      iovs += 1;
      f->msg_wire[m] = plain;
      f->msg_len[m++] = plain;
    } else {
      if (len > x.max_len) continue;
      double* seq = x.seal_slot < f->seqs_max ? f->seqs + x.seal_slot : nullptr;
      if (seq == nullptr || *seq > kMaxSequence) continue;
      mmsghdr* h = NextMessage(e, f, m, id, x, iovs);
      if (h == nullptr) continue;
      uint8_t* w = f->wrap.data() + static_cast<size_t>(m) * (kHeader + kTag);
      uint64_t s = static_cast<uint64_t>(*seq);
      w[0] = 0x0c;
      w[1] = 0;
      PutBe32(w + 2, x.peer_key);
      PutBe32(w + 6, x.tag_out);
      for (int b = 0; b < 6; b++) w[10 + b] = static_cast<uint8_t>(s >> (8 * (5 - b)));
      if (!SealParts(e, x.seal_slot, w, d, len, w + kHeader)) {
        // The payload may be half encrypted: never handed on, counted as lost.
        f->counters[id * kFwdCounters + 2] += 1;
        rec[0] = -1;
        forwarded++;
        continue;
      }
      *seq += 1;
      // Header, payload sealed in place, tag; the iovecs of consecutive datagrams are contiguous.
      int n = 0;
      f->iovs[iovs + n++] = {w, static_cast<size_t>(kHeader)};
      if (len > 0) f->iovs[iovs + n++] = {d, static_cast<size_t>(len)};
      f->iovs[iovs + n++] = {w + kHeader, static_cast<size_t>(kTag)};
      h->msg_hdr.msg_iovlen = n;
      iovs += n;
      f->msg_wire[m] = kHeader + len + kTag;
      f->msg_len[m++] = len;
    }
    if (credit > 0) credit--;
    rec[0] = -1;  // JavaScript skips it
    forwarded++;
  }
  if (m > 0) Send(e, f, m);
  return forwarded;
}

// ---- N-API ----

namespace {

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

// forwardAttach(engine, counters: Float64Array, credits: Int32Array, seqs: Float64Array)
napi_value Attach(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!Args(env, info, 4, argv)) return nullptr;
  Engine* e = LiveEngine(env, argv[0]);
  if (e == nullptr) return nullptr;
  void *c, *k, *s;
  size_t cn, kn, sn;
  if (!Typed(env, argv[1], napi_float64_array, &c, &cn) || !Typed(env, argv[2], napi_int32_array, &k, &kn) ||
      !Typed(env, argv[3], napi_float64_array, &s, &sn)) {
    napi_throw_type_error(env, nullptr, "forwardAttach(engine, counters: Float64Array, credits: Int32Array, seqs: Float64Array)");
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
  return nullptr;
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
  if (id >= 0 && id < static_cast<int>(e->fwd->entries.size())) Remove(e->fwd, id);
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
}

}  // namespace sluice
