// A client's own socket left unread while its session may send no more (docs/expose.md, "Excess
// left in the kernel"). A socket of its own (isolate.cc) holds one client's datagrams only, so
// once the send budget's pool refuses that session for the rest of a round (forward.cc), every
// further datagram read from it would be refused too: reading it costs a receive slot, a copy
// and a lookup for a drop. Instead the socket leaves the epoll set until the round ends; what the
// client sends meanwhile queues there, and what its receive buffer cannot hold is dropped by the
// kernel at that socket, costing the process nothing. A client that waits for its answers (a
// window) waits in its own queue instead of losing datagrams. What the kernel drops there while
// the socket is parked is the budget's doing: it is counted with the pool's drops of that entry by
// the pool's reason (JavaScript folds them into the session's record, the budget's counters and
// the route's events, as the pool's own), and left out of the socket's `isolated-kernel` drops.
//
// The socket leaves the set (EPOLL_CTL_DEL) rather than staying with no events: epoll reports
// EPOLLERR whatever is asked, and a pending ICMP error on a connected socket would then spin.
// One timerfd in the set, armed for the earliest end, wakes the engine to put sockets back; its
// event is the only wake-up a parked socket causes, one per round. It exists only while a socket
// is parked.
#include "engine.h"
#include "forward.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif

namespace sluice {

// The budget's rounds run on CLOCK_MONOTONIC (forward-pool.cc), as this timer does; a timer that
// fires early (it never should) waits again at least this long, so it can never spin.
constexpr int64_t kMinWaitNs = 50000;

int64_t ParkNow() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

static void Arm(Engine* e, int64_t now) {
  itimerspec t = {};
  if (e->park_next != INT64_MAX) {
    int64_t wait = e->park_next - now;
    if (wait < kMinWaitNs) wait = kMinWaitNs;
    t.it_value.tv_sec = wait / 1000000000;
    t.it_value.tv_nsec = wait % 1000000000;
  }
  timerfd_settime(e->park_fd, 0, &t, nullptr);  // all zero: disarmed
}

static bool MakeTimer(Engine* e) {
  if (e->park_fd >= 0) return true;
  int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (fd < 0) return false;
  epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u32 = kParkTimerId;
  if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
    close(fd);
    return false;
  }
  e->park_fd = fd;
  return true;
}

double KernelDrops(int fd) {
  uint32_t mem[16] = {};  // SK_MEMINFO_VARS is 10 today; the kernel copies at most what we ask
  socklen_t len = sizeof mem;
  if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len) == 0 && len >= 9 * sizeof(uint32_t)) return mem[8];  // SK_MEMINFO_DROPS
  return -1;
}

// The kernel's drops at parked socket `id` since its last settling go to its entry's pool drops.
static void Settle(Engine* e, int id) {
  Sock& s = e->socks[id];
  FwdState* f = e->fwd;
  if (s.parked_until == 0 || s.park_entry < 0 || f == nullptr) return;
  const Fwd& x = f->entries[s.park_entry];
  double now = KernelDrops(s.fd);
  if (now < 0 || !x.used || !x.seal || x.in_sock != id) return;
  double n = now - s.park_base;
  s.park_base = now;
  if (n > 0 && PoolCountDrops(f, s.park_entry, s.park_reason, n)) s.budget_drops += n;
}

void ParkSocket(Engine* e, int id, int entry) {
  Sock& s = e->socks[id];
  if (s.fd < 0 || s.parked_until != 0 || e->fwd == nullptr || !MakeTimer(e)) return;
  int64_t until = PoolRoundEnd(e->fwd, entry);
  int64_t now = ParkNow();
  if (until <= now) return;
  if (epoll_ctl(e->epfd, EPOLL_CTL_DEL, s.fd, nullptr) < 0) return;
  s.parked_until = until;
  s.park_entry = entry;
  s.park_reason = PoolRefuseRound(e->fwd, entry);
  s.park_base = KernelDrops(s.fd);
  if (s.park_base < 0) s.park_entry = -1;  // its drops cannot be told: left to isolated-kernel
  AgeQueue(e, id, entry);  // age.cc: what it holds from now on may outlive its senders
  e->parks++;
  if (until < e->park_next) {
    e->park_next = until;
    Arm(e, now);
  }
}

void ServeParked(Engine* e, bool fired) {
  if (fired) {
    uint64_t expirations;
    (void)!read(e->park_fd, &expirations, sizeof expirations);
  }
  if (e->park_next == INT64_MAX) return;
  int64_t now = ParkNow();
  if (now >= e->park_next) {
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < e->socks.size(); i++) {
      Sock& s = e->socks[i];
      if (s.parked_until == 0) continue;
      if (s.fd < 0) {
        s.parked_until = 0;
        continue;
      }
      if (s.parked_until > now) {
        if (s.parked_until < next) next = s.parked_until;
        continue;
      }
      Settle(e, static_cast<int>(i));
      s.parked_until = 0;
      s.park_entry = -1;
      e->unparks++;
      epoll_event ev = {};
      ev.events = EPOLLIN;
      ev.data.u32 = static_cast<uint32_t>(i);
      epoll_ctl(e->epfd, EPOLL_CTL_ADD, s.fd, &ev);  // readable already: the next epoll_wait reports it
    }
    e->park_next = next;
    if (next == INT64_MAX) {
      // None parked: no descriptor kept for it (made again by the next park, a few calls a round).
      FreePark(e);
      return;
    }
  } else if (!fired) {
    return;  // the timer is armed for park_next
  }
  Arm(e, now);
}

int SoloRoom(Engine* e, int id, int room) {
  Sock& s = e->socks[id];
  FwdState* f = e->fwd;
  if (s.solo < 0 || f == nullptr || f->pools == nullptr || f->pools->drops == nullptr) return room;
  int entry = s.solo;
  if (entry >= static_cast<int>(f->entries.size()) || !f->entries[entry].used || f->entries[entry].in_sock != id) {
    s.solo = -1;
    return room;
  }
  int32_t credit = f->credits[entry];
  if (credit < 0) return room;
  if (credit >= room) return room;
  int pool = PoolRoom(f, entry, room - credit);
  if (pool < 0) return credit > 0 ? credit : room;
  int64_t allowed = static_cast<int64_t>(credit) + pool;
  if (allowed == 0) {
    ParkSocket(e, id, entry);
    // Not parked (no timer could be made): read as before, or the readable socket would spin.
    return s.parked_until != 0 ? 0 : room;
  }
  return allowed < room ? static_cast<int>(allowed) : room;
}

void FreePark(Engine* e) {
  if (e->park_fd >= 0) close(e->park_fd);
  e->park_fd = -1;
  e->park_next = INT64_MAX;
}

namespace {

// socketBudgetDrops(engine, id) -> the kernel's drops at socket `id` that happened while it was
// parked for its budget (counted by the budget's reasons), settled up to now; 0 for any other.
napi_value SocketBudgetDrops(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!Args(env, info, 2, argv)) return nullptr;
  Engine* e = LiveEngine(env, argv[0]);
  int32_t id = -1;
  napi_get_value_int32(env, argv[1], &id);
  double n = 0;
  if (e != nullptr && id >= 0 && id < static_cast<int>(e->socks.size()) && e->socks[id].fd >= 0) {
    Settle(e, id);
    n = e->socks[id].budget_drops;
  }
  napi_value out;
  napi_create_double(env, n, &out);
  return out;
}

// parkState(engine) -> [parks, unparks, parked now, readiness callbacks]: what the tests and the
// bench read to see that a parked socket is neither read nor spun on.
napi_value ParkState(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!Args(env, info, 1, argv)) return nullptr;
  Engine* e = LiveEngine(env, argv[0]);
  double v[4] = {};
  if (e != nullptr) {
    v[0] = static_cast<double>(e->parks);
    v[1] = static_cast<double>(e->unparks);
    for (const Sock& s : e->socks) v[2] += s.parked_until != 0 && s.fd >= 0 ? 1 : 0;
    v[3] = static_cast<double>(e->wakeups);
  }
  napi_value out;
  napi_create_array_with_length(env, 4, &out);
  for (uint32_t i = 0; i < 4; i++) {
    napi_value n;
    napi_create_double(env, v[i], &n);
    napi_set_element(env, out, i, n);
  }
  return out;
}

}  // namespace

void RegisterPark(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"parkState", nullptr, ParkState, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"socketBudgetDrops", nullptr, SocketBudgetDrops, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}

}  // namespace sluice
