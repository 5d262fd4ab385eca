// The receive low-water mark of a long bulk direction (stream.h, kLowatBytes; docs/datapath.md,
// "A low-water mark on long bulk reads"). Under several bulk streams the engine otherwise wakes
// for a few segments on one socket at a time: each wake-up costs the loop's turn, and each small
// read a window update to the sender. SO_RCVLOWAT makes the kernel hold the socket's readability
// until the mark is reached (or its FIN or an error comes), and TCP acknowledges at once while
// below it, so the sender is never held back by a delayed ACK. What is unsafe about a mark is a
// tail shorter than it with nothing after it: the engine's timerfd lowers the mark of any raised
// socket not read for kLowatIdleNs whose pipe is empty; the kernel then reports what waits.
#include "stream-internal.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

namespace sluice {

static uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

static void Arm(StreamEngine* e, uint64_t at_ns) {
  itimerspec its = {};
  its.it_value.tv_sec = static_cast<time_t>(at_ns / 1000000000u);
  its.it_value.tv_nsec = static_cast<long>(at_ns % 1000000000u);
  if (timerfd_settime(e->lowat_fd, TFD_TIMER_ABSTIME, &its, nullptr) == 0) e->lowat_armed = true;
}

static void SetMark(int fd, int bytes) { setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &bytes, sizeof bytes); }

// 0 or -errno. Without a timerfd the engine never raises a mark.
int LowatOpen(StreamEngine* e) {
  e->lowat_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (e->lowat_fd < 0) return -errno;
  epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u32 = kLowatTimerId;
  if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->lowat_fd, &ev) < 0) {
    int err = errno;
    close(e->lowat_fd);
    e->lowat_fd = -1;
    return -err;
  }
  return 0;
}

void LowatClose(StreamEngine* e) {
  if (e->lowat_fd >= 0) close(e->lowat_fd);
  e->lowat_fd = -1;
  e->lowat_ids.clear();
}

// A splice read of `n` bytes by direction `d` of the pair whose client is `client`, from `fd`.
void LowatNoteRead(StreamEngine* e, int client, int d, int fd, size_t n) {
  StreamConn& c = e->conns[client];
  uint64_t now = NowNs();
  if (now - c.read_ns[d] > kLowatIdleNs) c.streak[d] = 0;
  c.read_ns[d] = now;
  c.streak[d] = n >= kLowatStreakBytes - c.streak[d] ? kLowatStreakBytes : c.streak[d] + static_cast<uint32_t>(n);
  if (c.lowat[d] || c.streak[d] < kLowatStreakBytes || e->lowat_fd < 0) return;
  const uint8_t end_bit = d == 0 ? kEndSeenClient : kEndSeenUpstream;
  if (c.ready & end_bit) return;
  int bytes = kLowatBytes;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &bytes, sizeof bytes) < 0) return;
  if (!c.lowat[1 - d]) e->lowat_ids.push_back(client);
  c.lowat[d] = true;
  if (!e->lowat_armed) Arm(e, now + kLowatIdleNs);
}

// The timerfd expired: lower the mark of every raised direction idle for kLowatIdleNs with an
// empty pipe (a direction with bytes in its pipe reads again once they are written, see Pump);
// re-arm for the earliest of the rest.
void LowatOnTimer(StreamEngine* e) {
  uint64_t expirations;
  while (read(e->lowat_fd, &expirations, sizeof expirations) < 0 && errno == EINTR) {
  }
  e->lowat_armed = false;
  uint64_t now = NowNs(), next = 0;
  size_t kept = 0;
  for (size_t i = 0; i < e->lowat_ids.size(); i++) {
    int id = e->lowat_ids[i];
    StreamConn& c = e->conns[id];
    if (c.kind != Kind::PipedClient || (!c.lowat[0] && !c.lowat[1])) continue;  // ended (the id may be another's now)
    for (int d = 0; d < 2; d++) {
      if (!c.lowat[d]) continue;
      uint64_t due = c.read_ns[d] + kLowatIdleNs;
      if (now >= due && (c.in_pipe[d] == 0 || !c.spliced[d])) {
        SetMark(d == 0 ? c.fd : e->conns[c.other].fd, 1);
        c.lowat[d] = false;
        c.streak[d] = 0;
        continue;
      }
      if (due <= now) due = now + kLowatIdleNs;
      if (next == 0 || due < next) next = due;
    }
    if (c.lowat[0] || c.lowat[1]) e->lowat_ids[kept++] = id;
  }
  e->lowat_ids.resize(kept);
  if (next != 0) Arm(e, next);
}

}  // namespace sluice
