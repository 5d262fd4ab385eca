// udpexposer channels in the batch (docs/datapath.md, "udpexposer channels in the batch"): the
// frames of the udpexposer mode are `tag (u16 BE) || payload` with no seal, so each direction of
// a channel is one entry that adds or strips those two bytes.
//   tagged:   a datagram received on `in_sock` from `src` (any, on a connected socket) is sent from
//             `out_sock` to `dst` behind the entry's two tag bytes (the server's connectee -> its
//             client; the client's worker -> its server).
//   untagged: a datagram received on `in_sock` from `src` whose first two bytes are the entry's tag
//             is sent without them from `out_sock` to `dst` (family 0: `out_sock` is connected)
//             (the server's client -> a connectee; the client's server -> a worker).
// A datagram shorter than `min_len`, with a payload over `max_len`, beginning with the guard bytes
// (password mode: a token), or over the reply budget (a pair, as forward.cc's) stays in the batch
// for JavaScript, which decides as it always has. Counters as every entry's (forward.cc): payload
// datagrams and bytes, send errors, and the reply allowance of an untagged entry under a budget.
#include "forward.h"

#include <string.h>

namespace sluice {

static inline uint64_t LeadKey(int sock, uint32_t tag) { return (static_cast<uint64_t>(static_cast<uint32_t>(sock)) << 32) | tag; }

int UntaggedMatch(FwdState* f, int sock, const int32_t* src, const uint8_t* d, int len) {
  if (len < 2 || f->by_lead.empty()) return -1;
  auto it = f->by_lead.find(LeadKey(sock, (uint32_t(d[0]) << 8) | d[1]));
  if (it == f->by_lead.end()) return -1;
  const Fwd& x = f->entries[it->second];
  return memcmp(x.src, src, 6 * sizeof(int32_t)) == 0 ? it->second : -1;
}

int TagInto(Engine* e, FwdState* f, int id, int m, int iovs, uint8_t* d, int len) {
  Fwd& x = f->entries[id];
  if (len < x.min_len) return 0;
  if (x.tagging == kTagged) {
    if (len > x.max_len || (x.guarded && len >= 2 && d[0] == x.guard[0] && d[1] == x.guard[1])) return 0;
    mmsghdr* h = NextMessage(e, f, m, id, x, iovs);
    if (h == nullptr) return 0;
    int n = 0;
    f->iovs[iovs + n++] = {x.tag_bytes, 2};
    if (len > 0) f->iovs[iovs + n++] = {d, static_cast<size_t>(len)};
    h->msg_hdr.msg_iovlen = n;
    f->msg_wire[m] = 2 + len;
    f->msg_len[m] = len;
    return n;
  }
  // Untagged. An empty payload stays with JavaScript: a run of empty datagrams cannot be one GSO send.
  int plain = len - 2;
  if (plain <= 0 || plain > x.max_len) return 0;
  double* allowance = f->counters + id * kFwdCounters + 3;
  if (x.budgeted && *allowance < plain) return 0;  // JavaScript drops it and counts the drop
  mmsghdr* h = NextMessage(e, f, m, id, x, iovs);
  if (h == nullptr) return 0;
  if (x.budgeted) *allowance -= plain;
  f->iovs[iovs] = {d + 2, static_cast<size_t>(plain)};
  h->msg_hdr.msg_iovlen = 1;
  f->msg_wire[m] = plain;
  f->msg_len[m] = plain;
  return 1;
}

namespace {

// forwardTagged(engine, kind (1: tagged, 2: untagged), inSock, src[6], outSock, dst[6], tag,
// minLen, maxLen, guard (-1: none, else the two leading bytes as a u16)) -> entry or -1.
napi_value AddCall(napi_env env, napi_callback_info info) {
  napi_value argv[10];
  if (!Args(env, info, 10, argv)) return nullptr;
  Engine* e = LiveEngine(env, argv[0]);
  if (e == nullptr || e->fwd == nullptr) return Int(env, -1);
  Fwd x;
  int32_t kind, tag, guard;
  if (napi_get_value_int32(env, argv[1], &kind) != napi_ok || napi_get_value_int32(env, argv[2], &x.in_sock) != napi_ok ||
      !Address6(env, argv[3], x.src) || napi_get_value_int32(env, argv[4], &x.out_sock) != napi_ok || !Address6(env, argv[5], x.dst) ||
      napi_get_value_int32(env, argv[6], &tag) != napi_ok || napi_get_value_int32(env, argv[7], &x.min_len) != napi_ok ||
      napi_get_value_int32(env, argv[8], &x.max_len) != napi_ok || napi_get_value_int32(env, argv[9], &guard) != napi_ok ||
      (kind != kTagged && kind != kUntagged) || tag < 0 || tag > 0xffff || guard > 0xffff) {
    napi_throw_type_error(env, nullptr, "forwardTagged(engine, kind, inSock, src, outSock, dst, tag, minLen, maxLen, guard)");
    return nullptr;
  }
  if (!LiveSock(e, x.in_sock) || !LiveSock(e, x.out_sock)) return Int(env, -1);
  // A listener sends to an address, a connected socket to its peer only.
  if (e->socks[x.out_sock].listener == (x.dst[1] == 0)) return Int(env, -1);
  if (!e->socks[x.in_sock].listener) memset(x.src, 0, sizeof x.src);
  else if (x.src[1] == 0) return Int(env, -1);  // a listener's entry names its source
  FwdState* f = e->fwd;
  x.tagging = static_cast<uint8_t>(kind);
  x.tag_bytes[0] = static_cast<uint8_t>(tag >> 8);
  x.tag_bytes[1] = static_cast<uint8_t>(tag);
  x.guarded = guard >= 0;
  x.guard[0] = static_cast<uint8_t>(guard >> 8);
  x.guard[1] = static_cast<uint8_t>(guard);
  auto& map = kind == kTagged ? f->by_src : f->by_lead;
  x.key = kind == kTagged ? SourceKey(x.in_sock, x.src) : LeadKey(x.in_sock, static_cast<uint32_t>(tag));
  if (map.count(x.key) != 0) return Int(env, -1);
  int id = NewEntry(f);
  if (id < 0) return Int(env, -1);
  x.used = true;
  f->entries[id] = x;
  map[x.key] = id;
  memset(f->counters + id * kFwdCounters, 0, kFwdCounters * sizeof(double));
  f->credits[id] = -1;  // no send budget: the udpexposer mode has none
  return Int(env, id);
}

// forwardTagPair(engine, taggedEntry, untaggedEntry, ratio): the untagged entry forwards at most
// `ratio` times the bytes the tagged one received, plus the allowance JavaScript sets in its
// counters[3] (the connectee's reply budget). False unless both are installed and of those kinds.
napi_value PairCall(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!Args(env, info, 4, argv)) return nullptr;
  Engine* e = LiveEngine(env, argv[0]);
  int32_t a = -1, b = -1;
  double ratio = 0;
  bool ok = false;
  if (e != nullptr && e->fwd != nullptr && napi_get_value_int32(env, argv[1], &a) == napi_ok && napi_get_value_int32(env, argv[2], &b) == napi_ok &&
      napi_get_value_double(env, argv[3], &ratio) == napi_ok) {
    FwdState* f = e->fwd;
    int n = static_cast<int>(f->entries.size());
    if (a >= 0 && a < n && b >= 0 && b < n && f->entries[a].used && f->entries[b].used && f->entries[a].tagging == kTagged &&
        f->entries[b].tagging == kUntagged && f->entries[a].pair < 0 && f->entries[b].paired_by < 0) {
      f->entries[a].pair = b;
      f->entries[a].ratio = ratio;
      f->entries[b].budgeted = true;
      f->entries[b].paired_by = a;
      ok = true;
    }
  }
  napi_value out;
  napi_get_boolean(env, ok, &out);
  return out;
}

}  // namespace

void RegisterForwardTag(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"forwardTagged", nullptr, AddCall, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"forwardTagPair", nullptr, PairCall, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}

}  // namespace sluice
