// A parked socket's queue aged (docs/expose.md, "A backlog outlives its senders"). While the send
// budget keeps a connected socket of one session parked (park.cc: the agent's socket toward its
// local service), its datagrams wait in the kernel; once that session's senders stop, what is
// queued would still go out at the budget's rate, each
// datagram taking a share that a live session needed, long after anyone waited for it. So from a
// socket's first park until a read finds its queue empty, every read asks the kernel when each
// datagram was queued (SO_TIMESTAMPNS) and drops those that waited longer than kStaleNs before
// they take a slot: counted with the pool's drops of the socket's entry as `stale` (JavaScript
// folds them into the session's record, the budget's counters and the route's events, as the
// budget's own reasons). The queue is FIFO, so the stale datagrams of a read are a prefix.
//
// The bound: a session may catch up on at most 40 ms of its share (its bank, forward-pool.cc) in
// the rounds of 10 ms; what waited longer than a bank and a round can no longer go out within its
// own share, only at the others' expense; and a listener's receive buffer holds about 50 ms at a
// paced client's rate. Nothing waits that long in a socket the budget does not hold back: a socket
// never parked, or read empty since, is read as before, without timestamps.
//
// Cost: one setsockopt the first time a socket is parked; while it is aged, a control buffer per
// receive slot, the kernel's timestamp per datagram and one clock read per receive. The kernel
// stamps every received packet while any socket asks for timestamps (a clock read per packet).
#include "engine.h"
#include "forward-pool.h"
#include "forward.h"

#include <string.h>
#include <sys/socket.h>
#include <time.h>

namespace sluice {

void AgeQueue(Engine* e, int id, int entry) {
  Sock& s = e->socks[id];
  // A client's own socket (isolate.cc) is one only while that client floods: its sender is the
  // flood itself, and what its queue holds is its excess, left in the kernel at no cost; aging it
  // would read that excess to drop it (19,000 of a 20,000-datagram flood in the park test). Runs
  // (gro) carry one timestamp for many datagrams. Neither is aged.
  if (s.beside >= 0 || s.listener || s.gro || s.fd < 0) return;
  if (!s.stamps) {
    int on = 1;
    if (setsockopt(s.fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) != 0) return;
    s.stamps = true;
  }
  s.aged = true;
  s.age_entry = entry;
}

void PrepareStamps(Engine* e, mmsghdr* h, int first, int n) {
  if (e->rx_stamps.empty()) e->rx_stamps.assign(static_cast<size_t>(e->rx_slots) * kStampWords, 0);
  for (int j = 0; j < n; j++) {
    h[j].msg_hdr.msg_control = &e->rx_stamps[static_cast<size_t>(first + j) * kStampWords];
    h[j].msg_hdr.msg_controllen = kStampWords * sizeof(uint64_t);
  }
}

// When datagram `m` was queued (CLOCK_REALTIME ns), or -1 when the kernel did not say.
static int64_t QueuedAt(msghdr* m) {
  for (cmsghdr* c = CMSG_FIRSTHDR(m); c != nullptr; c = CMSG_NXTHDR(m, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
      timespec ts;
      memcpy(&ts, CMSG_DATA(c), sizeof ts);
      return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
    }
  }
  return -1;
}

int DropStale(Engine* e, int id, int used, int r) {
  mmsghdr* h = e->rx_hdrs.data() + used;
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t oldest = static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec - kStaleNs;
  int k = 0;
  while (k < r) {
    int64_t at = QueuedAt(&h[k].msg_hdr);
    if (at < 0 || at >= oldest) break;
    k++;
  }
  if (k == 0) return r;
  Sock& s = e->socks[id];
  FwdState* f = e->fwd;
  // Counted with the entry that parked it while that entry still reads this socket; a dropped
  // datagram is never forwarded either way.
  if (f != nullptr && s.age_entry >= 0 && s.age_entry < static_cast<int>(f->entries.size())) {
    const Fwd& x = f->entries[s.age_entry];
    if (x.used && x.seal && x.in_sock == id) PoolCountDrops(f, s.age_entry, kPoolStale, k);
  }
  // The fresh rest moves down to the first slots (at most once per queue drained: the boundary).
  for (int j = k; j < r; j++) {
    int to = used + j - k, from = used + j;
    memmove(e->rx + static_cast<size_t>(to) * kSlotBytes, e->rx + static_cast<size_t>(from) * kSlotBytes, h[j].msg_len);
    e->rx_hdrs[to].msg_len = h[j].msg_len;
    e->rx_hdrs[to].msg_hdr.msg_flags = h[j].msg_hdr.msg_flags;
    if (s.listener) e->rx_names[to] = e->rx_names[from];
  }
  return r - k;
}

}  // namespace sluice
