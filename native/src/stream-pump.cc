// The pump of an established pair (stream.h): splice through a pipe per direction, a copy through
// the engine's buffer for short reads, FIN forwarded as FIN, the epoll interest a pair needs, and
// the pair's one end record. The look at the set that calls it is in stream.cc.
#include "stream.h"
#include "stream-internal.h"
#include "stream-sealed.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace sluice {

// Ends a pair with one end event: both sockets closed (the partner sees a FIN, or a RST where
// bytes were left unread), the counters final.
static void EndPair(StreamEngine* e, int id, int reason, int err) {
  double* rec = StreamEmit(e);
  // Taken after StreamEmit: a delivery may have run JavaScript that grew the table.
  StreamConn& cc = e->conns[id];
  rec[0] = kEvEnd;
  rec[1] = id;
  rec[2] = reason;
  rec[3] = err;
  rec[4] = cc.bytes_from_client;
  rec[5] = cc.bytes_to_client;
  int other = cc.other;
  if (other >= 0) StreamCloseConn(e, other);
  StreamCloseConn(e, id);
}

void StreamEndPair(StreamEngine* e, int id, int reason, int err) { EndPair(e, id, reason, err); }

// A pipe for one direction, from the pool when it has one.
static int TakePipe(StreamEngine* e, int* r, int* w, uint32_t* slots) {
  if (!e->pipe_pool.empty()) {
    *slots = static_cast<uint32_t>(e->pipe_pool.back());
    e->pipe_pool.pop_back();
    *w = e->pipe_pool.back();
    e->pipe_pool.pop_back();
    *r = e->pipe_pool.back();
    e->pipe_pool.pop_back();
    return 0;
  }
  int p[2];
  if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) return -errno;
  *r = p[0];
  *w = p[1];
  int bytes = e->big_pipes < kBigPipes ? fcntl(p[1], F_SETPIPE_SZ, kPipeBytes) : -1;
  if (bytes >= kPipeBytes) e->big_pipes++;
  if (bytes < 0) bytes = fcntl(p[1], F_GETPIPE_SZ);
  // Unknown: 0 slots, so no read is taken as proof of a drained socket.
  *slots = bytes > 0 ? static_cast<uint32_t>(bytes / getpagesize()) : 0;
  return 0;
}

// An empty pipe goes back to the pool (bounded) or is closed.
void StreamPutPipe(StreamEngine* e, int* r, int* w, uint32_t slots) {
  if (e->pipe_pool.size() < kPipePool * 3) {
    e->pipe_pool.push_back(*r);
    e->pipe_pool.push_back(*w);
    e->pipe_pool.push_back(static_cast<int>(slots));
  } else {
    StreamClosePipe(e, *r, *w, slots);
  }
  *r = *w = -1;
}

void StreamClosePipe(StreamEngine* e, int r, int w, uint32_t slots) {
  close(r);
  close(w);
  if (slots * static_cast<uint32_t>(getpagesize()) >= static_cast<uint32_t>(kPipeBytes)) e->big_pipes--;
}

enum { kStepMoved, kStepBlocked, kStepEof, kStepEnd, kStepAgain };

// One read of direction `d` through the engine's buffer (kCopyChunk): recv what is waiting, send
// it on, and put what the destination would not take into the direction's (empty) pipe, which
// StreamPump drains before the next read, so the order of bytes is kept. The same readiness rules
// as a splice: a short read proves the socket drained (unless its end was reported), EAGAIN
// clears the bit, 0 is the FIN. A full buffer switches the direction to splice.
static int CopyStep(StreamEngine* e, StreamConn* c, int d, int src, int dst) {
  const uint8_t in_bit = d == 0 ? kReadyInClient : kReadyInUpstream;
  const uint8_t out_bit = d == 0 ? kReadyOutUpstream : kReadyOutClient;
  const uint8_t end_bit = d == 0 ? kEndSeenClient : kEndSeenUpstream;
  const int id = static_cast<int>(c - e->conns.data());
  ssize_t n = recv(src, e->copy_buf, kCopyChunk, MSG_DONTWAIT);
  if (n == 0) {
    c->eof[d] = true;
    if (c->first_eof < 0) c->first_eof = d;
    return kStepEof;
  }
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      c->ready &= ~in_bit;
      return kStepBlocked;
    }
    if (errno == EINTR) return kStepAgain;
    EndPair(e, id, d == 0 ? kEndClientError : kEndUpstreamError, errno);
    return kStepEnd;
  }
  if (d == 0) c->bytes_from_client += n;
  e->read_bytes += static_cast<uint64_t>(n);
  if (static_cast<size_t>(n) >= kCopyChunk) {
    c->spliced[d] = true;
  } else if (!(c->ready & end_bit)) {
    c->ready &= ~in_bit;
  }
  ssize_t w = 0;
  if (c->ready & out_bit) {
    do {
      w = send(dst, e->copy_buf, static_cast<size_t>(n), MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (w < 0 && errno == EINTR);
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      // The destination is gone (EPIPE, ECONNRESET): an error of that side.
      EndPair(e, id, d == 0 ? kEndUpstreamError : kEndClientError, errno);
      return kStepEnd;
    }
    if (w < 0) w = 0;
    if (d == 1) c->bytes_to_client += w;
    if (w < n) c->ready &= ~out_bit;
  }
  if (w < n) {
    // What the destination did not take waits in the pipe, which StreamPump drains on its writability.
    if (c->pipe_r[d] < 0) {
      int err = TakePipe(e, &c->pipe_r[d], &c->pipe_w[d], &c->pipe_slots[d]);
      if (err < 0) {
        EndPair(e, id, d == 0 ? kEndClientError : kEndUpstreamError, -err);
        return kStepEnd;
      }
    }
    ssize_t left = n - w, put;
    do {
      put = write(c->pipe_w[d], e->copy_buf + w, static_cast<size_t>(left));
    } while (put < 0 && errno == EINTR);
    if (put != left) {
      // An empty pipe takes a page in one write (PIPE_BUF); anything else is a broken engine.
      EndPair(e, id, d == 0 ? kEndClientError : kEndUpstreamError, put < 0 ? errno : EIO);
      return kStepEnd;
    }
    c->in_pipe[d] += static_cast<uint32_t>(left);
  }
  return kStepMoved;
}

// A pair's side is registered edge-triggered for IN|OUT|RDHUP, less what cannot be acted on:
// - EPOLLIN while its direction waits on a blocked destination with bytes in the pipe (in_off):
//   every segment the source's peer sends would otherwise wake the engine for nothing (under
//   iperf3 through a paced upstream, more than half of all wake-ups);
// - EPOLLOUT on the source of a bulk direction (a splice read of 4 KiB or more, kCopyChunk) that
//   nothing ever had to wait to write to (out_off): its writability never changes what a pump
//   does, and with EPOLLOUT in the interest every segment that arrives while the engine reads
//   reports the socket again after the read took it (an edge with nothing left to read).
// Each change is an EPOLL_CTL_MOD, which re-polls the socket: nothing that arrived or freed up
// meanwhile is lost. A short connection never changes its interest. 0 or -errno.
static int SetInterest(StreamEngine* e, int sid, bool in_off, bool out_off) {
  StreamConn& s = e->conns[sid];
  if (s.in_off == in_off && s.out_off == out_off) return 0;
  uint32_t ev = (in_off ? 0u : uint32_t{EPOLLIN}) | (out_off ? 0u : uint32_t{EPOLLOUT}) | EPOLLRDHUP | EPOLLET;
  if (StreamCtl(e, sid, EPOLL_CTL_MOD, ev) < 0) return -errno;
  s.in_off = in_off;
  s.out_off = out_off;
  return 0;
}

// Moves what can move now in both directions of the pair whose client is `id`; returns after
// every step would block (or its side is not ready, see kReady*), or the pair ended.
void StreamPump(StreamEngine* e, int id) {
  StreamConn* c = &e->conns[id];
  if (c->sealed != nullptr) return SealedPump(e, id);
  const int sides[2] = {id, c->other};
  int fds[2] = {c->fd, e->conns[c->other].fd};
  // Side 0 is the client, side 1 the upstream; direction d reads side d and writes side 1 - d.
  const uint8_t in_bit[2] = {kReadyInClient, kReadyInUpstream};
  const uint8_t out_bit[2] = {kReadyOutClient, kReadyOutUpstream};
  const uint8_t end_bit[2] = {kEndSeenClient, kEndSeenUpstream};
  bool moved = false;
  for (int d = 0; d < 2; d++) {
    int src = fds[d], dst = fds[1 - d];
    for (;;) {
      if (c->in_pipe[d] > 0) {
        if (!(c->ready & out_bit[1 - d])) break;
        ssize_t n = splice(c->pipe_r[d], nullptr, dst, nullptr, c->in_pipe[d], SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
          c->in_pipe[d] -= static_cast<uint32_t>(n);
          if (d == 1) c->bytes_to_client += n;
          moved = true;
          continue;
        }
        if (n < 0 && errno == EAGAIN) {
          c->ready &= ~out_bit[1 - d];
          break;
        }
        if (n < 0 && errno == EINTR) continue;
        // The destination is gone (EPIPE, ECONNRESET): an error of that side.
        return EndPair(e, id, d == 0 ? kEndUpstreamError : kEndClientError, n < 0 ? errno : EPIPE);
      }
      if (c->eof[d]) {
        // The last direction to finish: closing both sockets sends this FIN, no shutdown needed
        // (every byte of the other direction was read, so the close is a FIN, not a RST).
        if (!c->shut[d] && c->shut[1 - d]) return EndPair(e, id, c->first_eof == 1 ? kEndUpstreamClosed : kEndClientClosed, 0);
        break;  // the FIN is forwarded once both directions have run (below)
      }
      if (e->conns[sides[d]].in_off) {
        // No edge was reported while it was off: counted as readable.
        int err = SetInterest(e, sides[d], false, e->conns[sides[d]].out_off);
        if (err < 0) return EndPair(e, id, d == 0 ? kEndClientError : kEndUpstreamError, -err);
        c->ready |= in_bit[d];
      }
      if (!(c->ready & in_bit[d])) break;
      // A direction holds a pipe only while bytes are in flight: an idle pair costs its two sockets.
      if (c->pipe_r[d] < 0 && c->spliced[d]) {
        int err = TakePipe(e, &c->pipe_r[d], &c->pipe_w[d], &c->pipe_slots[d]);
        if (err < 0) return EndPair(e, id, d == 0 ? kEndClientError : kEndUpstreamError, -err);
      }
      if (!c->spliced[d]) {
        int r = CopyStep(e, c, d, src, dst);
        if (r == kStepEnd) return;  // the pair ended (EndPair ran)
        if (r == kStepMoved) {
          moved = true;
          continue;
        }
        if (r == kStepBlocked) break;
        continue;  // kStepEof (handled above on the next turn) or kStepAgain (EINTR)
      }
      ssize_t n = splice(src, nullptr, c->pipe_w[d], nullptr, kSpliceChunk, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        if (static_cast<size_t>(n) >= kCopyChunk) {
          c->small_reads[d] = 0;
        } else if (++c->small_reads[d] >= kSmallReadsToCopy) {
          c->small_reads[d] = 0;
          c->spliced[d] = false;
        }
        c->in_pipe[d] += static_cast<uint32_t>(n);
        if (d == 0) c->bytes_from_client += n;
        e->read_bytes += static_cast<uint64_t>(n);
        moved = true;
        // Fewer bytes than the pipe has slots: the pipe was not full (each slot holds at least a
        // byte), so the read stopped because the socket had nothing more; bytes arriving after
        // it are a new edge. No read to see EAGAIN. Not once the side's FIN or error was
        // reported: the read that returns it is still to come.
        if (static_cast<uint32_t>(n) < c->pipe_slots[d] && !(c->ready & end_bit[d])) c->ready &= ~in_bit[d];
        continue;
      }
      if (n == 0) {
        c->eof[d] = true;
        if (c->first_eof < 0) c->first_eof = d;
        continue;
      }
      if (errno == EAGAIN) {
        c->ready &= ~in_bit[d];
        break;
      }
      if (errno == EINTR) continue;
      return EndPair(e, id, d == 0 ? kEndClientError : kEndUpstreamError, errno);
    }
    if (c->in_pipe[d] == 0 && c->pipe_r[d] >= 0) StreamPutPipe(e, &c->pipe_r[d], &c->pipe_w[d], c->pipe_slots[d]);
  }
  // A direction that reached its FIN with its pipe drained forwards it with shutdown(SHUT_WR)
  // (FIN as FIN: the other direction stays open), unless the other one finished in this same
  // turn: then both FINs were read, and closing both sockets sends both, so no shutdown at all.
  const bool fin0 = c->eof[0] && c->in_pipe[0] == 0, fin1 = c->eof[1] && c->in_pipe[1] == 0;
  if (fin0 && fin1) return EndPair(e, id, c->first_eof == 1 ? kEndUpstreamClosed : kEndClientClosed, 0);
  for (int d = 0; d < 2; d++) {
    if ((d == 0 ? fin0 : fin1) && !c->shut[d]) {
      shutdown(fds[1 - d], SHUT_WR);
      c->shut[d] = true;
    }
  }
  for (int k = 0; k < 2; k++) {
    // Side k is read by direction k and written by direction 1 - k.
    StreamConn& s = e->conns[sides[k]];
    const bool in_off = c->in_pipe[k] > 0 && !(c->ready & out_bit[1 - k]) && !c->eof[k];
    const bool write_waits = c->in_pipe[1 - k] > 0 && !(c->ready & out_bit[k]);
    if (write_waits) s.out_kept = true;
    const bool out_off = !s.out_kept && c->spliced[k];
    int err = SetInterest(e, sides[k], in_off, out_off);
    // Interest that had to come back and did not: an edge could be missed, so the pair ends. One
    // that could not be dropped only costs wake-ups.
    if (err < 0 && ((s.in_off && !in_off) || (s.out_off && !out_off))) {
      return EndPair(e, id, k == 0 ? kEndClientError : kEndUpstreamError, -err);
    }
  }
  if (moved && c->idle_ms > 0) c->deadline = uv_now(e->loop) + c->idle_ms;
}

// Starts moving bytes between a held client and a connected upstream; 0 or -errno. Both are
// registered before anything changes, so a failure (ENOMEM, ENOSPC from epoll_ctl) leaves two
// held connections the caller can still hand to Node.
int StreamStartPair(StreamEngine* e, int client, int upstream, uint32_t idle_ms) {
  // Edge-triggered on both (a dialed upstream already is, from its dial). Registering the client
  // reports it writable at once, so the pair's first Pump follows in this wake-up or the next, and
  // with every side marked ready it takes what arrived on either side in the meantime (bytes sent
  // while the upstream was dialed, an upstream's banner).
  // Readiness: the upstream's edges since its dial were kept; registering the client now reports
  // the client's. A side that was registered otherwise is tried once (unknown counts as ready).
  // A FIN or error already reported on either side stays known (kEndSeen*).
  uint8_t up = e->conns[upstream].edge ? e->conns[upstream].ready : kReadyInClient | kReadyOutClient;
  uint8_t ready = (up & kReadyInClient ? kReadyInUpstream : 0) | (up & kReadyOutClient ? kReadyOutUpstream : 0) |
                  (up & kEndSeenClient ? kEndSeenUpstream : 0) |
                  (e->conns[client].edge ? kReadyInClient | kReadyOutClient | (e->conns[client].ready & kEndSeenClient) : 0);
  // Two sides registered edge-triggered already (both dialed: an agent's data connection and its
  // local service) produce no event at the join, yet bytes may be waiting on either: re-arming one
  // side makes epoll report its state once, so the first Pump happens.
  bool both_edge = e->conns[client].edge && e->conns[upstream].edge;
  if (StreamCtlEdge(e, upstream) < 0 || StreamCtlEdge(e, client) < 0) return -errno;
  if (both_edge && StreamCtl(e, client, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) < 0) return -errno;
  StreamConn& c = e->conns[client];
  StreamConn& u = e->conns[upstream];
  c.kind = Kind::PipedClient;
  c.other = upstream;
  c.idle_ms = idle_ms;
  c.ready = ready;
  u.kind = Kind::PipedUpstream;
  u.other = client;
  u.ready = 0;
  c.watched = u.watched = false;
  e->setup_started = true;
  if (idle_ms > 0) {
    c.deadline = uv_now(e->loop) + idle_ms;
    e->timed++;
    StreamNoteTimeout(e, idle_ms);
  }
  StreamWatch(e);
  return 0;
}

}  // namespace sluice
