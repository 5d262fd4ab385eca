// Receiving coalesced datagrams (UDP_GRO) and splitting them back into receive slots
// (docs/datapath.md, "Coalesced receive (UDP_GRO)").
//
// A socket with UDP_GRO on may get a run of equal-sized datagrams from one source as ONE message:
// a UDP_SEGMENT send on loopback (our own agents and gateway send runs that way: forward.cc,
// tx.cc) arrives as is instead of being cut up at the receiving socket, and a NIC's GRO may
// merge a flow's burst. One message costs the kernel one buffer, one queueing, one wake-up and one
// copy instead of one per datagram. The kernel reports the segment size in a UDP_GRO control
// message; RecvInto (engine.cc) asks for it, and SplitGro cuts the message into one record per
// datagram, in order, in the slots after it, so everything after the receive (opening, the
// forwarding table, JavaScript) sees the datagrams exactly as without GRO.
//
// A message can hold up to 64 (128 on Linux >= 6.9) datagrams, more than the slots left in the
// batch: the datagrams that do not fit are carried, in order, to the next harvest (TakeCarry), which
// takes them before anything new is received. DrainReady keeps harvesting while anything is
// carried (after its usual rounds, only the carry), so nothing carried waits for the next readiness.
#include "engine.h"

#include <netinet/udp.h>
#include <string.h>

#include <algorithm>

#ifndef UDP_GRO
#define UDP_GRO 104
#endif

namespace sluice {

// Control bytes per receive header: one cmsghdr with an int, rounded up generously.
constexpr int kGroControl = 32;

void* GroControl(Engine* e, int slot) {
  if (e->gro_control.empty()) e->gro_control.resize(static_cast<size_t>(e->rx_slots) * kGroControl / 8);
  return e->gro_control.data() + static_cast<size_t>(slot) * kGroControl / 8;
}

size_t GroControlBytes() { return kGroControl; }

// The segment size the kernel reported for the message in header `h`, 0 when none.
static int SegmentOf(const msghdr& h) {
  if (h.msg_controllen == 0 || h.msg_control == nullptr) return 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(const_cast<msghdr*>(&h)); c != nullptr; c = CMSG_NXTHDR(const_cast<msghdr*>(&h), c)) {
    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
      int size;
      memcpy(&size, CMSG_DATA(c), sizeof size);
      return size > 0 ? size : 0;
    }
  }
  return 0;
}

static inline uint8_t* SlotData(Engine* e, int slot) { return e->rx + static_cast<size_t>(slot) * kSlotBytes; }

int SplitGro(Engine* e, int used, int r) {
  const mmsghdr* h = e->rx_hdrs.data() + used;
  // Segments per message and the total, to place each message's first datagram.
  int segs[kMaxRecv];
  int sizes[kMaxRecv];
  int total = 0;
  bool any = false;
  for (int j = 0; j < r; j++) {
    int len = e->rxm[(used + j) * kRxRec + 1];
    int seg = len > 0 ? SegmentOf(h[j].msg_hdr) : 0;
    sizes[j] = seg;
    segs[j] = seg > 0 && len > seg ? (len + seg - 1) / seg : 1;
    if (segs[j] > 1) any = true;
    total += segs[j];
  }
  e->split_most = 1;
  for (int j = 0; j < r; j++) e->split_most = std::max(e->split_most, segs[j]);
  if (!any) return r;
  for (int j = 0; j < r; j++)
    if (segs[j] > 1) {
      e->gro_stats[0] += 1;
      e->gro_stats[1] += segs[j];
    }
  int room = e->rx_slots - used;
  if (total > room) e->gro_stats[2] += total - room;
  // First the datagrams beyond the slots, in order, into the carry (their bytes are still in place).
  if (total > room) {
    int at = 0;
    for (int j = 0; j < r; j++) {
      const int32_t* rec = e->rxm + (used + j) * kRxRec;
      int len = rec[1];
      for (int k = 0; k < segs[j]; k++, at++) {
        if (at < room) continue;
        int off = segs[j] > 1 ? k * sizes[j] : 0;
        int part = segs[j] > 1 ? std::min(sizes[j], len - off) : len;
        Carried c;
        memcpy(c.rec, rec, sizeof c.rec);
        c.rec[1] = part;
        c.off = e->carry_bytes.size();
        const uint8_t* src = SlotData(e, used + j) + off;
        if (part > 0) e->carry_bytes.insert(e->carry_bytes.end(), src, src + part);
        e->carry.push_back(c);
      }
    }
  }
  // Then the rest, from the last message back: a message's datagrams only move to later slots,
  // and every later message has already left its own slot when an earlier one writes there.
  int first = total;
  for (int j = r - 1; j >= 0; j--) {
    first -= segs[j];
    int32_t rec[kRxRec];
    memcpy(rec, e->rxm + (used + j) * kRxRec, sizeof rec);
    int len = rec[1];
    for (int k = segs[j] - 1; k >= 0; k--) {
      int at = first + k;
      if (at >= room) continue;
      int off = segs[j] > 1 ? k * sizes[j] : 0;
      int part = segs[j] > 1 ? std::min(sizes[j], len - off) : len;
      int32_t* out = e->rxm + (used + at) * kRxRec;
      if (at != j || k != 0) {
        if (part > 0) memmove(SlotData(e, used + at), SlotData(e, used + j) + off, static_cast<size_t>(part));
        memcpy(out, rec, sizeof rec);
      }
      out[1] = part;
    }
  }
  return std::min(total, room);
}

int RecvGro(Engine* e, int id, int used, int room) {
  int total = 0;
  while (total < room && used + total < e->rx_slots) {
    int per = std::max(1, e->socks[id].gro_segs);
    int want = std::max(1, (room - total) / per);
    e->split_most = 1;
    int got = RecvOnce(e, id, used + total, want);
    total += got;
    if (e->recv_msgs <= 0) break;  // drained, or an error record
    e->socks[id].gro_segs = e->split_most;
    if (e->recv_msgs < want) break;
  }
  return total;
}

int TakeCarry(Engine* e) {
  int used = 0;
  size_t n = e->carry.size();
  while (e->carry_head < n && used < e->rx_slots) {
    const Carried& c = e->carry[e->carry_head++];
    if (c.rec[0] < 0) continue;  // its socket closed meanwhile
    memcpy(e->rxm + used * kRxRec, c.rec, sizeof c.rec);
    if (c.rec[1] > 0) memcpy(SlotData(e, used), e->carry_bytes.data() + c.off, static_cast<size_t>(c.rec[1]));
    used++;
  }
  if (e->carry_head >= n) {
    e->carry.clear();
    e->carry_bytes.clear();
    e->carry_head = 0;
  }
  return used;
}

void DropCarry(Engine* e, int sock) {
  for (size_t i = e->carry_head; i < e->carry.size(); i++)
    if (e->carry[i].rec[0] == sock) e->carry[i].rec[0] = -1;
}

namespace {

// socketGro(engine, id, on) -> whether UDP_GRO is now as asked (false where the kernel lacks it).
napi_value SocketGro(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  void* p = nullptr;
  int32_t id = -1;
  bool on = false;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 3 || napi_get_value_external(env, argv[0], &p) != napi_ok ||
      p == nullptr || napi_get_value_int32(env, argv[1], &id) != napi_ok || napi_get_value_bool(env, argv[2], &on) != napi_ok) {
    napi_throw_type_error(env, nullptr, "socketGro(engine, id, on)");
    return nullptr;
  }
  Engine* e = static_cast<Engine*>(p);
  bool ok = !e->destroyed && id >= 0 && id < static_cast<int>(e->socks.size()) && e->socks[id].fd >= 0;
  int v = on ? 1 : 0;
  if (ok) ok = setsockopt(e->socks[id].fd, SOL_UDP, UDP_GRO, &v, sizeof v) == 0;
  if (ok) e->socks[id].gro = on;
  napi_value out;
  napi_get_boolean(env, ok, &out);
  return out;
}

// groStats(engine) -> [coalesced messages split, datagrams in them, datagrams carried to a later harvest]
napi_value GroStats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void* p = nullptr;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 1 || napi_get_value_external(env, argv[0], &p) != napi_ok ||
      p == nullptr) {
    napi_throw_type_error(env, nullptr, "groStats(engine)");
    return nullptr;
  }
  const Engine* e = static_cast<Engine*>(p);
  napi_value out;
  napi_create_array_with_length(env, 3, &out);
  for (uint32_t i = 0; i < 3; i++) {
    napi_value v;
    napi_create_double(env, e->gro_stats[i], &v);
    napi_set_element(env, out, i, v);
  }
  return out;
}

}  // namespace

void RegisterGro(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"socketGro", nullptr, SocketGro, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"groStats", nullptr, GroStats, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, 2, props);
}

}  // namespace sluice
