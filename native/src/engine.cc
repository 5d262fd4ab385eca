// Receiving: readiness from one uv_poll on the private epoll set, datagrams by recvmmsg into the
// shared slots, one JavaScript call per batch.
#include "engine.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>

namespace sluice {

int AllocId(Engine* e) {
  // Ids closed during a batch stay reserved until it ends: the batch may still hold records for
  // them, and JavaScript must not mistake those for the new socket's.
  if (!e->in_batch && !e->pending_ids.empty()) {
    e->free_ids.insert(e->free_ids.end(), e->pending_ids.begin(), e->pending_ids.end());
    e->pending_ids.clear();
  }
  if (!e->free_ids.empty()) {
    int id = e->free_ids.back();
    e->free_ids.pop_back();
    return id;
  }
  e->socks.emplace_back();
  return static_cast<int>(e->socks.size()) - 1;
}

void ReleaseId(Engine* e, int id) {
  e->socks[id] = Sock();
  ForgetCarried(e, id);
  e->pending_ids.push_back(id);
}

// The poll handle is active (and keeps the loop alive) exactly while a socket is open, as an
// open dgram socket would.
void Watch(Engine* e) {
  if (e->destroyed) return;
  if (e->threaded) {
    // The thread always waits; the async handle keeps the loop alive only while sockets are open.
    if (e->active > 0) uv_ref(reinterpret_cast<uv_handle_t*>(&e->async));
    else uv_unref(reinterpret_cast<uv_handle_t*>(&e->async));
    return;
  }
  if (e->active > 0 && !e->polling) {
    uv_poll_start(&e->poll, UV_READABLE, OnReadable);
    e->polling = true;
  } else if (e->active == 0 && e->polling) {
    uv_poll_stop(&e->poll);
    e->polling = false;
  }
}

static void PutAddress(int32_t* rec, const sockaddr_in6* name) {
  if (name->sin6_family == AF_INET) {
    const sockaddr_in* a = reinterpret_cast<const sockaddr_in*>(name);
    rec[2] = ntohs(a->sin_port);
    rec[3] = 4;
    rec[4] = static_cast<int32_t>(ntohl(a->sin_addr.s_addr));
    rec[5] = rec[6] = rec[7] = 0;  // whole records compare equal for one source (seal.cc, forward.cc)
    return;
  }
  rec[2] = ntohs(name->sin6_port);
  if (IN6_IS_ADDR_V4MAPPED(&name->sin6_addr)) {
    // An IPv4 client on a dual-stack socket: reported as IPv4, replies are mapped back on send.
    uint32_t v4;
    memcpy(&v4, name->sin6_addr.s6_addr + 12, 4);
    rec[3] = 4;
    rec[4] = static_cast<int32_t>(ntohl(v4));
    rec[5] = rec[6] = rec[7] = 0;
    return;
  }
  rec[3] = 6;
  memcpy(rec + 4, name->sin6_addr.s6_addr, 16);
}

static inline int Min(int a, int b) { return a < b ? a : b; }

// Receives up to `room` datagrams of socket `id` into the slots from `used` on; returns the
// records written (a pending socket error is one record with no slot data). An aged queue's stale
// head (age.cc) is dropped and the read goes on, each read twice the last up to the slots left,
// until a fresh datagram or the queue's end: so it may return more than `room` (at most the
// slots left), which the budget then judges as any datagram read beyond its allowance.
static int RecvInto(Engine* e, int id, int used, int room) {
  Sock& s = e->socks[id];
  mmsghdr* h = e->rx_hdrs.data() + used;
  const int most = Min(e->rx_slots - used, kMaxRecv);
  int want = room;
  int r = 0;
  for (int reads = 1;; reads++) {
    const bool aged = s.aged;
    for (int j = 0; j < want; j++) {
      h[j].msg_hdr.msg_name = s.listener ? &e->rx_names[used + j] : nullptr;
      h[j].msg_hdr.msg_namelen = s.listener ? sizeof(sockaddr_in6) : 0;
      h[j].msg_hdr.msg_flags = 0;
      h[j].msg_hdr.msg_control = nullptr;
      h[j].msg_hdr.msg_controllen = 0;
    }
    if (s.gro) PrepareCoalesced(e, h, used, want);
    else if (aged) PrepareStamps(e, h, used, want);
    r = recvmmsg(s.fd, h, want, MSG_DONTWAIT, nullptr);
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        if (errno != EINTR) s.aged = false;  // read to its end: fresh from here on
        return 0;
      }
      // A pending socket error (ICMP unreachable on a connected socket): one record, no slot data.
      int32_t* rec = e->rxm + used * kRxRec;
      rec[0] = id;
      rec[1] = -errno;
      rec[2] = rec[3] = 0;
      return 1;
    }
    if (!aged) break;
    if (r < want) s.aged = false;
    int kept = DropStale(e, id, used, r);
    if (kept > 0 || r < want || reads == kMaxStaleReads || want == most) {
      r = kept;
      break;
    }
    want = Min(2 * want, most);
  }
  for (int j = 0; j < r; j++) {
    int32_t* rec = e->rxm + (used + j) * kRxRec;
    rec[0] = id;
    // A slot holds the largest UDP payload, so truncation means a jumbogram: not forwarded.
    rec[1] = (h[j].msg_hdr.msg_flags & MSG_TRUNC) ? -EMSGSIZE : static_cast<int32_t>(h[j].msg_len);
    if (s.listener) {
      PutAddress(rec, &e->rx_names[used + j]);
    } else {
      rec[2] = rec[3] = 0;
    }
  }
  return s.gro ? SplitCoalesced(e, used, r, room) : r;
}

int Harvest(Engine* e) {
  // park.cc: a parked socket whose round has ended is back in the set before it is polled.
  if (e->park_next != INT64_MAX && ParkNow() >= e->park_next) ServeParked(e, false);
  epoll_event evs[64];
  int n = epoll_wait(e->epfd, evs, 64, 0);
  e->hold_ready = n;
  // Each ready socket first gets its share of the slots: epoll hands the same sockets back in the
  // same order, so without a share a flooded socket early in that order would fill every batch
  // and starve the ones after it (a tunnel's replies behind its own flood). What the others leave
  // then goes to the sockets that filled their share (a route's listener among a thousand
  // sessions' sockets with one datagram each), so no slot stays empty while data waits.
  int share = n > 0 ? e->rx_slots / n : e->rx_slots;
  if (share < kMinShare) share = kMinShare;
  // Datagrams of coalesced runs beyond their socket's share wait in the carry (gro.cc): they go
  // first, a share of them, and no coalescing socket is read while any wait (its order).
  int used = CarryPending(e) ? DrainCarry(e, 0, Min(share, e->rx_slots)) : 0;
  int full[64];
  int more[64];  // what each of those may still be read this harvest (park.cc: a budget's allowance)
  int nfull = 0;
  for (int k = 0; k < n && used < e->rx_slots; k++) {
    if (evs[k].data.u32 == kParkTimerId) {
      ServeParked(e, true);
      continue;
    }
    int id = static_cast<int>(evs[k].data.u32);
    if (id < 0 || id >= static_cast<int>(e->socks.size()) || e->socks[id].fd < 0) continue;
    if (e->socks[id].gro && CarryPending(e)) {
      more[nfull] = kUnbounded;
      full[nfull++] = id;
      continue;
    }
    int room = Min(Min(e->rx_slots - used, kMaxRecv), share);
    // park.cc: a socket of one session is read no further than its send budget allows now (none:
    // parked until its round ends); what it may not send waits in its queue, not dropped here.
    int allowed = e->socks[id].solo >= 0 ? SoloRoom(e, id, e->rx_slots - used) : kUnbounded;
    if (allowed == 0) continue;
    int r = RecvInto(e, id, used, Min(room, allowed));
    used += r;
    if (r >= room && allowed > r) {
      more[nfull] = allowed - r;
      full[nfull++] = id;
    }
    // heavy.cc: one source that keeps filling a watched listener's share is named to JavaScript.
    if (used < e->rx_slots && NoteSources(e, id, used - r, r, room)) PutHeavyRecord(e, id, used++);
  }
  if (CarryPending(e)) used += DrainCarry(e, used, e->rx_slots - used);
  // A client's own socket (isolate.cc: a client over its rate) comes last to what is left: the
  // path behind it (tunnel and session sockets) is drained first, and a flooder takes only the
  // slots nobody else needs, its excess dropped in its own queue. A coalescing socket is not read
  // while its earlier runs wait in the carry (gro.cc: their order).
  for (int last = 0; last < 2; last++) {
    for (int k = 0; k < nfull && used < e->rx_slots; k++) {
      const Sock& s = e->socks[full[k]];
      if (s.fd < 0 || (s.beside >= 0) != (last == 1) || (s.gro && CarryPending(e))) continue;
      used += RecvInto(e, full[k], used, Min(Min(e->rx_slots - used, kMaxRecv), more[k]));
    }
  }
  OpenHarvested(e, used);
  e->forwarded = ForwardHarvested(e, used);
  return used;
}

static void Deliver(Engine* e, int n) {
  napi_env env = e->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value fn, recv, arg, result;
  napi_get_reference_value(env, e->on_batch, &fn);
  napi_get_global(env, &recv);  // make_callback wants an object as `this`
  napi_create_int32(env, n, &arg);
  e->in_batch = true;
  // make_callback runs the microtask and nextTick queues afterwards, as any I/O callback does.
  napi_status st = napi_make_callback(env, e->actx, recv, fn, 1, &arg, &result);
  e->in_batch = false;
  if (st == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
  napi_close_handle_scope(env, scope);
}

void OnReadable(uv_poll_t* handle, int status, int events) { DrainReady(static_cast<Engine*>(handle->data)); }

// True while the JavaScript side (and so the shared memory) is alive; tears down otherwise.
static bool Alive(Engine* e) {
  napi_handle_scope scope;
  if (napi_open_handle_scope(e->env, &scope) != napi_ok) return false;
  napi_value rx = nullptr;
  napi_get_reference_value(e->env, e->refs[0], &rx);
  napi_close_handle_scope(e->env, scope);
  if (rx == nullptr) Teardown(e);
  return rx != nullptr;
}

void DrainReady(Engine* e) {
  if (e->destroyed || !Alive(e)) return;
  e->wakeups++;
  uint64_t started = HoldStart(e);
  int harvested = 0, n = 0;
  // Past kMaxRounds only while a coalesced run still waits in the carry (gro.cc): it drains, and
  // no readiness would come back for it.
  for (int round = 0; (round < kMaxRounds || CarryPending(e)) && !e->destroyed; round++) {
    if (!e->pending_ids.empty()) {
      e->free_ids.insert(e->free_ids.end(), e->pending_ids.begin(), e->pending_ids.end());
      e->pending_ids.clear();
    }
    n = Harvest(e);
    harvested += n;
    if (n == 0) break;
    // A batch forwarded whole (forward.cc) needs no JavaScript call.
    if (e->forwarded < n) Deliver(e, n);
    if (n < e->rx_slots && !CarryPending(e)) break;
  }
  HoldAfter(e, started, harvested, n == e->rx_slots);
}

}  // namespace sluice
