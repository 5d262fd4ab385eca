// Coalesced receives (UDP_GRO) on the sockets whose peers send runs with UDP_SEGMENT: the tunnel
// sockets, where the other end is a Sluice datapath that sends each run to one destination as one
// GSO send (tx.cc, forward.cc). Without UDP_GRO the receiving kernel cuts such a run back into one
// buffer per datagram before it queues them (a segmentation, a queueing and a wake-up per
// datagram, then one receive record per datagram); with it the run is queued and received as one
// buffer, and this file cuts it into the receive slots, one record per datagram, so everything
// after the harvest (opening, forwarding, JavaScript) sees exactly the datagrams that were sent.
//
// A received run may hold more datagrams than its socket's share of the slots (engine.cc Harvest):
// the rest waits in the carry, in order, and goes into the next harvests a share at a time; no
// coalescing socket is read while the carry holds any, so a socket's datagrams keep their order
// and a flooded tunnel socket takes no more of a harvest than its share. The drain loop keeps
// going while the carry holds any (engine.cc DrainReady), so nothing waits there for a wake-up
// that may never come.
#include "engine.h"

#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>

#include <vector>

#ifndef UDP_GRO
#define UDP_GRO 104
#endif

namespace sluice {

constexpr size_t kKeepCarryBytes = 256 * 1024;

struct GroState {
  std::vector<uint64_t> cmsg;  // 4 words per receive slot (>= CMSG_SPACE(int))
  // Datagrams waiting for a slot: their records and bytes, in arrival order, from `head` on.
  std::vector<int32_t> carry_recs;  // kRxRec each; rec[1] is the length
  std::vector<uint32_t> carry_offs;  // where each one's bytes start in carry_bytes
  std::vector<uint8_t> carry_bytes;
  size_t head = 0;
  uint64_t coalesced = 0;  // received buffers that held more than one datagram
  uint64_t carried = 0;    // datagrams that waited in the carry
};

static GroState* State(Engine* e) {
  if (e->gro == nullptr) {
    e->gro = new GroState();
    e->gro->cmsg.assign(static_cast<size_t>(e->rx_slots) * 4, 0);
  }
  return e->gro;
}

bool CarryPending(Engine* e) { return e->gro != nullptr && e->gro->head < e->gro->carry_offs.size(); }

void FreeGro(Engine* e) {
  delete e->gro;
  e->gro = nullptr;
}

void PrepareCoalesced(Engine* e, mmsghdr* h, int first, int room) {
  GroState* g = State(e);
  for (int j = 0; j < room; j++) {
    h[j].msg_hdr.msg_control = &g->cmsg[static_cast<size_t>(first + j) * 4];
    h[j].msg_hdr.msg_controllen = 4 * sizeof(uint64_t);
  }
}

// The segment size the kernel reported for a coalesced buffer, 0 for a single datagram.
static int SegmentSize(msghdr* m) {
  for (cmsghdr* c = CMSG_FIRSTHDR(m); c != nullptr; c = CMSG_NXTHDR(m, c)) {
    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
      int size;
      memcpy(&size, CMSG_DATA(c), sizeof size);
      return size;
    }
  }
  return 0;
}

static void Carry(GroState* g, const int32_t* rec, const uint8_t* bytes, int len) {
  g->carry_recs.insert(g->carry_recs.end(), rec, rec + kRxRec);
  g->carry_recs[g->carry_recs.size() - kRxRec + 1] = len;
  g->carry_offs.push_back(static_cast<uint32_t>(g->carry_bytes.size()));
  g->carry_bytes.insert(g->carry_bytes.end(), bytes, bytes + len);
  g->carried++;
}

int SplitCoalesced(Engine* e, int used, int r, int limit) {
  GroState* g = e->gro;
  mmsghdr* h = e->rx_hdrs.data() + used;
  // Datagrams in each received buffer, and where the first of each goes.
  int total = 0;
  int count[kMaxRecv], size[kMaxRecv];
  for (int j = 0; j < r; j++) {
    int32_t* rec = e->rxm + (used + j) * kRxRec;
    int seg = rec[1] > 0 ? SegmentSize(&h[j].msg_hdr) : 0;
    size[j] = seg;
    count[j] = seg > 0 && seg < rec[1] ? (rec[1] + seg - 1) / seg : 1;
    if (count[j] > 1) g->coalesced++;
    total += count[j];
  }
  if (total == r) return r;
  int room = limit;
  if (total > room) {
    // The datagrams past the free slots go to the carry first, in order, while every buffer is
    // still where it was received.
    int t = 0;
    for (int j = 0; j < r; j++) {
      const int32_t* rec = e->rxm + (used + j) * kRxRec;
      const uint8_t* src = e->rx + static_cast<size_t>(used + j) * kSlotBytes;
      for (int s = 0; s < count[j]; s++, t++) {
        if (t < room) continue;
        int off = s * size[j];
        Carry(g, rec, src + off, count[j] > 1 ? (s == count[j] - 1 ? rec[1] - off : size[j]) : rec[1]);
      }
    }
  }
  // Backwards, so a buffer's slot is cut up before anything is written over it: datagram t of the
  // harvest goes to slot used + t, and t >= j for every datagram of buffer j.
  int t_end = total;
  for (int j = r - 1; j >= 0; j--) {
    int32_t rec[kRxRec];
    memcpy(rec, e->rxm + (used + j) * kRxRec, sizeof rec);
    const uint8_t* src = e->rx + static_cast<size_t>(used + j) * kSlotBytes;
    int len = rec[1], seg = size[j], n = count[j];
    int first = t_end - n;
    for (int s = n - 1; s >= 0; s--) {  // the buffer's first datagram last: it may stay in place
      int t = first + s;
      if (t >= room) continue;
      int off = s * seg;
      int dlen = n > 1 ? (s == n - 1 ? len - off : seg) : len;
      int32_t* out = e->rxm + (used + t) * kRxRec;
      memcpy(out, rec, sizeof rec);
      out[1] = dlen;
      if (t != j && dlen > 0) memmove(e->rx + static_cast<size_t>(used + t) * kSlotBytes, src + off, static_cast<size_t>(dlen));
    }
    t_end = first;
  }
  return total < room ? total : room;
}

int DrainCarry(Engine* e, int first, int max) {
  GroState* g = e->gro;
  int used = 0;
  size_t n = g->carry_offs.size();
  while (g->head < n && used < max) {
    const int32_t* rec = &g->carry_recs[g->head * kRxRec];
    int32_t* out = e->rxm + (first + used) * kRxRec;
    memcpy(out, rec, kRxRec * sizeof(int32_t));
    if (rec[0] >= 0) memcpy(e->rx + static_cast<size_t>(first + used) * kSlotBytes, &g->carry_bytes[g->carry_offs[g->head]], static_cast<size_t>(rec[1]));
    g->head++;
    used++;
  }
  if (g->head == n) {
    g->carry_recs.clear();
    g->carry_offs.clear();
    g->carry_bytes.clear();
    g->head = 0;
    // A burst of large coalesced runs may have grown it to a few MiB: not kept while idle.
    if (g->carry_bytes.capacity() > kKeepCarryBytes) std::vector<uint8_t>().swap(g->carry_bytes);
  }
  return used;
}

void ForgetCarried(Engine* e, int sock) {
  GroState* g = e->gro;
  if (g == nullptr) return;
  for (size_t i = g->head; i < g->carry_offs.size(); i++)
    if (g->carry_recs[i * kRxRec] == sock) g->carry_recs[i * kRxRec] = -1;  // skipped by everything after the harvest
}

namespace {

// coalesce(engine, id) -> true when the socket now takes runs as one buffer (UDP_GRO), false when
// this kernel cannot (the socket then works as before).
napi_value Coalesce(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  void* p = nullptr;
  int32_t id = -1;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 2 || napi_get_value_external(env, argv[0], &p) != napi_ok ||
      p == nullptr || napi_get_value_int32(env, argv[1], &id) != napi_ok) {
    napi_throw_type_error(env, nullptr, "coalesce(engine, id)");
    return nullptr;
  }
  Engine* e = static_cast<Engine*>(p);
  bool ok = !e->destroyed && id >= 0 && id < static_cast<int>(e->socks.size()) && e->socks[id].fd >= 0;
  int on = 1;
  if (ok) ok = setsockopt(e->socks[id].fd, SOL_UDP, UDP_GRO, &on, sizeof on) == 0;
  if (ok) {
    State(e);
    e->socks[id].gro = true;
  }
  napi_value out;
  napi_get_boolean(env, ok, &out);
  return out;
}

// coalesceStats(engine) -> [received buffers that held more than one datagram, datagrams that waited in the carry]
napi_value CoalesceStats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void* p = nullptr;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 1 || napi_get_value_external(env, argv[0], &p) != napi_ok || p == nullptr) {
    napi_throw_type_error(env, nullptr, "coalesceStats(engine)");
    return nullptr;
  }
  Engine* e = static_cast<Engine*>(p);
  napi_value out, v;
  napi_create_array_with_length(env, 2, &out);
  napi_create_double(env, e->gro != nullptr ? static_cast<double>(e->gro->coalesced) : 0, &v);
  napi_set_element(env, out, 0, v);
  napi_create_double(env, e->gro != nullptr ? static_cast<double>(e->gro->carried) : 0, &v);
  napi_set_element(env, out, 1, v);
  return out;
}

}  // namespace

void RegisterGro(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"coalesce", nullptr, Coalesce, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"coalesceStats", nullptr, CoalesceStats, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, 2, props);
}

}  // namespace sluice
