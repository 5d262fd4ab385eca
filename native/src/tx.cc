// Sending: the records JavaScript staged during a batch go out per socket in sendmmsg calls; a
// run of equal-sized datagrams to one destination becomes one UDP_SEGMENT (GSO) message.
// A datagram that cannot be sent costs that datagram only: its errno is reported in errm.
#include "engine.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/udp.h>
#include <string.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

namespace sluice {

void PutSegment(msghdr* h, uint64_t* space, int size) {
  // A single GSO send: the kernel cuts the payload into `size`-byte datagrams.
  cmsghdr* c = reinterpret_cast<cmsghdr*>(space);
  c->cmsg_level = SOL_UDP;
  c->cmsg_type = UDP_SEGMENT;
  c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
  uint16_t seg = static_cast<uint16_t>(size);
  memcpy(CMSG_DATA(c), &seg, sizeof seg);
  h->msg_control = c;
  h->msg_controllen = CMSG_SPACE(sizeof(uint16_t));
}

bool ProbeGso() {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int size = 1200;
  bool ok = setsockopt(fd, SOL_UDP, UDP_SEGMENT, &size, sizeof size) == 0;
  close(fd);
  return ok;
}

static void Report(Engine* e, int id, int err, int datagrams) {
  if (e->err_count > 0) {
    int32_t* last = e->errm + (e->err_count - 1) * kErrRec;
    if (last[0] == id && last[1] == err) {
      last[2] += datagrams;
      return;
    }
  }
  if (e->err_count == e->err_max) {
    // Out of error records: fold into the last one (counts stay right, the errno may not).
    e->errm[(e->err_max - 1) * kErrRec + 2] += datagrams;
    return;
  }
  int32_t* rec = e->errm + e->err_count * kErrRec;
  rec[0] = id;
  rec[1] = err;
  rec[2] = datagrams;
  e->err_count++;
}

static inline int32_t* Rec(Engine* e, int i) { return e->txm + i * kTxRec; }
static inline int Size(const int32_t* r) { return r[3] + r[11]; }

static bool SameDestination(const int32_t* a, const int32_t* b) {
  return a[4] == b[4] && a[5] == b[5] && a[6] == b[6] && a[7] == b[7] && a[8] == b[8] && a[9] == b[9];
}

// Fills `name` for an unconnected (listener) socket; false when the family cannot be reached.
static bool Destination(const Sock& s, const int32_t* r, sockaddr_in6* name, socklen_t* len) {
  return DestinationOf(s, r + 4, name, len);
}

bool DestinationOf(const Sock& s, const int32_t* d, sockaddr_in6* name, socklen_t* len) {
  const int32_t* r = d - 4;  // the record layout: port at 4, family at 5, address at 6
  memset(name, 0, sizeof *name);
  uint16_t port = htons(static_cast<uint16_t>(r[4]));
  if (r[5] == 4) {
    uint32_t v4 = htonl(static_cast<uint32_t>(r[6]));
    if (s.family == AF_INET) {
      sockaddr_in* a = reinterpret_cast<sockaddr_in*>(name);
      a->sin_family = AF_INET;
      a->sin_port = port;
      a->sin_addr.s_addr = v4;
      *len = sizeof(sockaddr_in);
      return true;
    }
    name->sin6_family = AF_INET6;
    name->sin6_port = port;
    name->sin6_addr.s6_addr[10] = 0xff;
    name->sin6_addr.s6_addr[11] = 0xff;
    memcpy(name->sin6_addr.s6_addr + 12, &v4, 4);
    *len = sizeof(sockaddr_in6);
    return true;
  }
  if (r[5] == 6 && s.family == AF_INET6) {
    name->sin6_family = AF_INET6;
    name->sin6_port = port;
    memcpy(name->sin6_addr.s6_addr, r + 6, 16);
    *len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

// Points iovecs at one record's prefix and payload; false when they lie outside shared memory.
static bool Iov(Engine* e, const int32_t* r, iovec* iov, int* n) {
  uint32_t off = static_cast<uint32_t>(r[2]), len = static_cast<uint32_t>(r[3]);
  uint32_t poff = static_cast<uint32_t>(r[10]), plen = static_cast<uint32_t>(r[11]);
  uint8_t* base = (r[1] & 1) ? e->tx : e->rx;
  size_t limit = (r[1] & 1) ? e->tx_bytes : e->rx_bytes;
  if (static_cast<size_t>(off) + len > limit || static_cast<size_t>(poff) + plen > e->tx_bytes) return false;
  *n = 0;
  if (plen > 0) iov[(*n)++] = {e->tx + poff, plen};
  iov[(*n)++] = {base + off, len};
  return true;
}

// Errors of a UDP_SEGMENT send that say "not this way" rather than "not this datagram": a segment
// size over the path MTU (EMSGSIZE on Linux 6, EINVAL before), or no GSO on the device (EIO).
bool GsoRetryable(int err) { return err == EMSGSIZE || err == EINVAL || err == EIO || err == EOPNOTSUPP || err == ENOPROTOOPT; }

// Sends records [first, first + count) one datagram each (the fallback when a GSO send fails).
static void SendEach(Engine* e, int id, int first, int count) {
  Sock& s = e->socks[id];
  for (int i = first; i < first + count; i++) {
    const int32_t* r = Rec(e, i);
    msghdr m = {};
    iovec iov[2];
    int n;
    sockaddr_in6 name;
    socklen_t nlen = 0;
    if (!Iov(e, r, iov, &n)) { Report(e, id, EFAULT, 1); continue; }
    if (s.listener) {
      if (!Destination(s, r, &name, &nlen)) { Report(e, id, EAFNOSUPPORT, 1); continue; }
      m.msg_name = &name;
      m.msg_namelen = nlen;
    }
    m.msg_iov = iov;
    m.msg_iovlen = n;
    while (sendmsg(s.fd, &m, 0) < 0) {
      if (errno == EINTR) continue;
      Report(e, id, errno, 1);
      break;
    }
  }
}

// One socket's consecutive records [first, end): built into messages, sent with sendmmsg.
static void SendGroup(Engine* e, int id, int first, int end) {
  Sock& s = e->socks[id];
  int m = 0, iovs = 0;
  for (int k = first; k < end;) {
    const int32_t* r = Rec(e, k);
    int size = Size(r);
    int run = 1;
    if (e->gso && size < s.gso_limit) {
      int bytes = size;
      while (k + run < end && run < kMaxGsoSegments) {
        const int32_t* q = Rec(e, k + run);
        int qs = Size(q);
        if (qs > size || bytes + qs > kMaxGsoBytes || !SameDestination(r, q)) break;
        bytes += qs;
        run++;
        if (qs < size) break;  // only the last segment of a GSO send may be shorter
      }
    }
    mmsghdr& h = e->tx_hdrs[m];
    memset(&h, 0, sizeof h);
    if (s.listener) {
      socklen_t nlen;
      if (!Destination(s, r, &e->tx_names[m], &nlen)) {
        Report(e, id, EAFNOSUPPORT, run);
        k += run;
        continue;
      }
      h.msg_hdr.msg_name = &e->tx_names[m];
      h.msg_hdr.msg_namelen = nlen;
    }
    h.msg_hdr.msg_iov = &e->tx_iovs[iovs];
    int used = 0, bad = 0;
    for (int i = 0; i < run; i++) {
      int n;
      if (!Iov(e, Rec(e, k + i), &e->tx_iovs[iovs + used], &n)) { bad++; continue; }
      used += n;
    }
    if (bad > 0) {
      // Records outside shared memory are a bug upstream of here; never send them.
      Report(e, id, EFAULT, run);
      k += run;
      continue;
    }
    h.msg_hdr.msg_iovlen = used;
    iovs += used;
    e->tx_segment[m] = 0;
    if (run > 1) {
      PutSegment(&h.msg_hdr, &e->tx_cmsg[m * 4], size);
      e->tx_segment[m] = size;
    }
    e->tx_first[m] = k;
    e->tx_count[m] = run;
    m++;
    k += run;
  }
  int done = 0;
  while (done < m) {
    int r = sendmmsg(s.fd, &e->tx_hdrs[done], m - done, 0);
    if (r > 0) {
      done += r;
      continue;
    }
    int err = errno;
    if (err == EINTR) continue;
    // Message `done` failed; the rest are tried again after it.
    if (e->tx_segment[done] > 0 && GsoRetryable(err)) {
      // This segment size cannot be offloaded on this path (over the MTU, or no GSO here).
      if (e->tx_segment[done] < s.gso_limit) s.gso_limit = e->tx_segment[done];
      SendEach(e, id, e->tx_first[done], e->tx_count[done]);
    } else {
      Report(e, id, err, e->tx_count[done]);
    }
    done++;
  }
}

int Flush(Engine* e, int count) {
  e->err_count = 0;
  if (count > e->tx_max) count = e->tx_max;
  SealStaged(e, count);
  for (int i = 0; i < count;) {
    int id = Rec(e, i)[0];
    int j = i + 1;
    while (j < count && Rec(e, j)[0] == id) j++;
    // Records for a socket closed since they were staged are dropped quietly: their session is gone.
    if (id >= 0 && id < static_cast<int>(e->socks.size()) && e->socks[id].fd >= 0) SendGroup(e, id, i, j);
    i = j;
  }
  return e->err_count;
}

}  // namespace sluice
