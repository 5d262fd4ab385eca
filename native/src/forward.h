// The forwarding table of established tunnel sessions (forward.cc: the batch side; forward-api.cc:
// the N-API calls that install, remove and attach). See forward.cc for what an entry does.
#pragma once

#include "engine.h"
#include "forward-pool.h"

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
  // On a seal entry: one byte sent before the tunnel datagram (ICE's data prefix 0x0b on a direct
  // peer path, forward-peer.cc), 0 for none.
  uint8_t frame = 0;
  // A plain-matched entry that seals again instead of sending the plaintext (forward-peer.cc): a
  // relayed peer flow at the gateway, opened under the opener's key and sealed under the target's.
  bool reseal = false;
  // forward-tag.cc: a udpexposer entry (kTagged, kUntagged; 0: none), the two tag bytes it adds or
  // matches, the least datagram length it forwards, and two leading bytes it leaves to JavaScript.
  uint8_t tagging = 0;
  uint8_t tag_bytes[2] = {};
  int min_len = 0;
  bool guarded = false;
  uint8_t guard[2] = {};
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
  // Shared with JavaScript (forwardAttach's fifth argument, absent with an older caller): per
  // entry id, a generation bumped whenever the engine removes the entry (and for every id when the
  // table is freed), so JavaScript tells whether its entry is still installed without a call, and
  // never takes another session's entry that reused the id for its own.
  int32_t* gens = nullptr;
  int gens_max = 0;
  napi_ref refs[4] = {};
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
  FwdPools* pools = nullptr;  // send budgets in the batch (forward-pool.cc); made by the first pool
  // Prefix + header + tag of each framed sealed message (forward-peer.cc), sized on first use.
  std::vector<uint8_t> framed;
  std::unordered_map<uint64_t, int> by_lead;  // untagged entries (forward-tag.cc): socket << 32 | tag
};

// The lookup key of a seal entry (exact for IPv4 and connected sockets, a hash for IPv6), and of a plain one.
uint64_t SourceKey(int sock, const int32_t* src);
inline uint64_t TagKey(int slot, uint32_t tag) { return (static_cast<uint64_t>(slot) << 32) | tag; }
// Removes entry `id` (idempotent) and undoes its reply-budget pair.
void RemoveForward(FwdState* f, int id);
// forward-pool.cc
void FreePools(Engine* e, FwdState* f);
void RegisterForwardPool(napi_env env, napi_value exports);

// forward-api.cc, shared with forward-peer.cc: the engine of an N-API value (null when destroyed),
// a typed array of `want`, an address [port, family, address x4] from a JavaScript array.
Engine* LiveEngine(napi_env env, napi_value v);
bool Typed(napi_env env, napi_value v, napi_typedarray_type want, void** data, size_t* length);
bool Address6(napi_env env, napi_value v, int32_t* out);
// A free entry id (-1 when the table is full); whether socket `id` is open.
int NewEntry(FwdState* f);
bool LiveSock(Engine* e, int id);

// forward-peer.cc: framed seal entries (a direct peer path's ICE prefix).
constexpr int kFrameWrap = 1 + kHeader + kTag;
void RegisterForwardFrame(napi_env env, napi_value exports);
// forward-peer.cc: seals the opened `plain` bytes at `payload` in place for reseal entry `x` as
// message `m` (header and tag in the wrap scratch) and fills its iovecs from `iovs`. Returns the
// iovecs used; 0 when it cannot go now (no sequence left: JavaScript decides), -1 when sealing
// failed (the payload may be half encrypted: never handed on).
int ResealInto(Engine* e, FwdState* f, const Fwd& x, int m, int iovs, uint8_t* payload, int plain);
// forward.cc: message `m` of the harvest's sends for entry `entry`, its iovecs from `iovs`; null
// when its destination cannot be reached from its socket.
mmsghdr* NextMessage(Engine* e, FwdState* f, int m, int entry, const Fwd& x, int iovs);

// forward-tag.cc: udpexposer entries (docs/datapath.md, "udpexposer channels in the batch").
constexpr uint8_t kTagged = 1;    // matched by source as a seal entry; sent behind its two tag bytes
constexpr uint8_t kUntagged = 2;  // matched by socket, source and its first two bytes; sent without them
// The untagged entry datagram `d` of `len` bytes from `src` on `sock` belongs to, or -1.
int UntaggedMatch(FwdState* f, int sock, const int32_t* src, const uint8_t* d, int len);
// Fills message `m` for tagging entry `id`: the iovecs used, 0 when it is left to JavaScript.
int TagInto(Engine* e, FwdState* f, int id, int m, int iovs, uint8_t* d, int len);
void RegisterForwardTag(napi_env env, napi_value exports);

}  // namespace sluice
