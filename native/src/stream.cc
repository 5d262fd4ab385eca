// The stream engine: readiness, batched accept, non-blocking dial with a deadline, and the
// splice pump of an established pair (stream.h). The N-API surface is in stream-api.cc.
#include "stream.h"
#include "stream-internal.h"
#include "stream-sealed.h"
#include "stream-trunk.h"
#include "stream-relayed.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace sluice {

// Ids released before the last batch was delivered are free again (no record can name them now).
static void RecycleIds(StreamEngine* e) {
  if (e->in_batch || e->pending_ids.empty()) return;
  e->free_ids.insert(e->free_ids.end(), e->pending_ids.begin(), e->pending_ids.end());
  e->pending_ids.clear();
}

int StreamAllocId(StreamEngine* e) {
  RecycleIds(e);
  if (!e->free_ids.empty()) {
    int id = e->free_ids.back();
    e->free_ids.pop_back();
    return id;
  }
  e->conns.emplace_back();
  return static_cast<int>(e->conns.size()) - 1;
}

// Ids released while a batch is being built or delivered stay reserved until it is over: the
// batch may still name them, and JavaScript must not take those records for a new connection's.
static void ReleaseId(StreamEngine* e, int id) {
  e->conns[id] = StreamConn();
  e->pending_ids.push_back(id);
}

// The poll handle keeps the loop alive exactly while a listener or connection is open.
void StreamWatch(StreamEngine* e) {
  if (e->destroyed) return;
  if (e->active > 0 && !e->polling) {
    uv_poll_start(&e->poll, UV_READABLE, StreamOnReadable);
    e->polling = true;
  } else if (e->active == 0 && e->polling) {
    uv_poll_stop(&e->poll);
    e->polling = false;
  }
  if (e->timed > 0 && !e->timing) {
    uv_timer_start(&e->timer, StreamOnTick, e->tick_ms, e->tick_ms);
    e->timing = true;
  } else if (e->timed == 0 && e->timing) {
    uv_timer_stop(&e->timer);
    e->timing = false;
  }
}

// Deadlines are checked by one timer at a quarter of the shortest timeout seen (25 ms to 1 s),
// so a timeout fires at most that much late and a pair costs no timer of its own.
void StreamNoteTimeout(StreamEngine* e, uint32_t ms) {
  uint64_t want = ms / 4;
  if (want < 25) want = 25;
  if (want > 1000) want = 1000;
  if (want < e->tick_ms) {
    e->tick_ms = want;
    if (e->timing) uv_timer_start(&e->timer, StreamOnTick, e->tick_ms, e->tick_ms);
  }
}

int StreamAdopt(StreamEngine* e, int fd, Kind kind) {
  int id = StreamAllocId(e);
  StreamConn& c = e->conns[id];
  c.fd = fd;
  c.kind = kind;
  e->active++;
  return id;
}

int StreamCtl(StreamEngine* e, int id, int op, uint32_t events) {
  epoll_event ev = {};
  ev.events = events;
  ev.data.u32 = static_cast<uint32_t>(id);
  StreamConn& c = e->conns[id];
  if (epoll_ctl(e->epfd, op, c.fd, &ev) < 0) return -1;
  c.in_set = op != EPOLL_CTL_DEL;
  c.edge = (events & EPOLLET) != 0;
  return 0;
}

// Registers `id` edge-triggered for everything a pair waits on (ADD or MOD as its membership says).
int StreamCtlEdge(StreamEngine* e, int id) {
  if (e->conns[id].edge) return 0;
  return StreamCtl(e, id, e->conns[id].in_set ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
}

static void PutAddress(double* rec, const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) {
    const sockaddr_in* a = reinterpret_cast<const sockaddr_in*>(&ss);
    rec[0] = 4;
    rec[1] = ntohs(a->sin_port);
    rec[2] = ntohl(a->sin_addr.s_addr);
    return;
  }
  const sockaddr_in6* a = reinterpret_cast<const sockaddr_in6*>(&ss);
  rec[1] = ntohs(a->sin6_port);
  if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
    uint32_t v4;
    memcpy(&v4, a->sin6_addr.s6_addr + 12, 4);
    rec[0] = 4;
    rec[2] = ntohl(v4);
    return;
  }
  rec[0] = 6;
  for (int i = 0; i < 4; i++) {
    uint32_t w;
    memcpy(&w, a->sin6_addr.s6_addr + 4 * i, 4);
    rec[2 + i] = ntohl(w);
  }
}

// The next event record; delivers the batch first when the shared memory is full.
double* StreamEmit(StreamEngine* e) {
  if (e->ev_count == e->ev_max) StreamDeliver(e);
  double* rec = e->ev + static_cast<size_t>(e->ev_count) * kEvRec;
  e->ev_count++;
  return rec;
}

void StreamDeliver(StreamEngine* e) {
  if (e->ev_count == 0 || e->destroyed) return;
  napi_env env = e->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) {
    e->ev_count = 0;  // never left full: the next record would be written past the shared memory
    return;
  }
  napi_value fn, recv, arg, result;
  napi_get_reference_value(env, e->on_events, &fn);
  napi_get_global(env, &recv);
  napi_create_int32(env, e->ev_count, &arg);
  e->ev_count = 0;
  bool was = e->in_batch;
  e->in_batch = true;
  napi_status st = napi_make_callback(env, e->actx, recv, fn, 1, &arg, &result);
  e->in_batch = was;
  if (st == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
  napi_close_handle_scope(env, scope);
}

void StreamPutPipe(StreamEngine* e, int* r, int* w, uint32_t slots);

void StreamCloseConn(StreamEngine* e, int id) {
  StreamConn& c = e->conns[id];
  if (c.fd < 0) return;
  // close() removes the descriptor from the epoll set: the engine never duplicates one (they are
  // CLOEXEC, and a released one leaves the set first), so no EPOLL_CTL_DEL is needed.
  if (e->close_later) {
    e->closing.push_back(c.fd);
  } else {
    close(c.fd);
  }
  if (c.kind == Kind::Dialing || ((c.kind == Kind::PipedClient || c.kind == Kind::TrunkPlain) && c.idle_ms > 0) || c.paused) e->timed--;
  if (c.kind == Kind::Relayed && c.idle_ms > 0) e->timed--;
  if (c.kind == Kind::TrunkConn || c.kind == Kind::TrunkPlain) TrunkOnClose(e, id);
  if (c.relayed != nullptr) RelayedFree(e, &c);
  for (int d = 0; d < 2; d++) {
    if (c.pipe_r[d] < 0) continue;
    // An empty pipe is kept for the next pair (bounded); one holding bytes is closed with them.
    if (c.in_pipe[d] == 0) {
      StreamPutPipe(e, &c.pipe_r[d], &c.pipe_w[d], c.pipe_slots[d]);
    } else {
      StreamClosePipe(e, c.pipe_r[d], c.pipe_w[d], c.pipe_slots[d]);
    }
  }
  if (c.kind == Kind::Listener) e->bound.erase(id);
  if (c.sealed != nullptr) SealedFree(e, &c);
  StreamUnjoin(e, id);
  ReleaseId(e, id);
  e->active--;
  StreamWatch(e);
}

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

int StreamTakePipe(StreamEngine* e, int* r, int* w, uint32_t* slots);

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
// Pump drains before the next read, so the order of bytes is kept. The same readiness rules as
// a splice: a short read proves the socket drained (unless its end was reported), EAGAIN clears
// the bit, 0 is the FIN. A full buffer switches the direction to splice.
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
    // What the destination did not take waits in the pipe, which Pump drains on its writability.
    if (c->pipe_r[d] < 0) {
      int err = StreamTakePipe(e, &c->pipe_r[d], &c->pipe_w[d], &c->pipe_slots[d]);
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
  uint32_t ev = (in_off ? 0 : EPOLLIN) | (out_off ? 0 : EPOLLOUT) | EPOLLRDHUP | EPOLLET;
  if (StreamCtl(e, sid, EPOLL_CTL_MOD, ev) < 0) return -errno;
  s.in_off = in_off;
  s.out_off = out_off;
  return 0;
}

// Moves what can move now in both directions of the pair whose client is `id`; returns after
// every step would block (or its side is not ready, see kReady*), or the pair ended.
static void Pump(StreamEngine* e, int id) {
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
        int err = StreamTakePipe(e, &c->pipe_r[d], &c->pipe_w[d], &c->pipe_slots[d]);
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

// What an edge on one side of a pair says may now proceed without blocking.
static void NoteReady(StreamConn* client, int side, uint32_t events) {
  uint32_t any = EPOLLHUP | EPOLLERR;  // the next call on that side returns the error or the end
  if (events & (EPOLLIN | EPOLLRDHUP | any)) client->ready |= side == 0 ? kReadyInClient : kReadyInUpstream;
  if (events & (EPOLLOUT | any)) client->ready |= side == 0 ? kReadyOutClient : kReadyOutUpstream;
  if (events & (EPOLLRDHUP | any)) client->ready |= side == 0 ? kEndSeenClient : kEndSeenUpstream;
}

static void Accept(StreamEngine* e, int lid) {
  for (int k = 0; k < kAcceptBatch; k++) {
    int lfd = e->conns[lid].fd;
    if (lfd < 0) return;
    sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    int fd = accept4(lfd, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: stop asking until the next tick instead of spinning on a ready listener.
        StreamConn& l = e->conns[lid];
        l.paused = true;
        StreamCtl(e, lid, EPOLL_CTL_MOD, 0);
        e->timed++;
        StreamWatch(e);
      }
      return;  // EAGAIN, or an aborted handshake (ECONNABORTED): nothing more now
    }
    // TCP_NODELAY is inherited from the listener (streamListen sets it).
    sockaddr_storage local;
    auto bound = e->bound.find(lid);
    if (bound != e->bound.end()) {
      local = bound->second;
    } else {
      socklen_t llen = sizeof local;
      getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen);
    }
    int id = StreamAdopt(e, fd, Kind::Held);
    double* rec = StreamEmit(e);
    memset(rec, 0, sizeof(double) * kEvRec);
    rec[0] = kEvAccept;
    rec[1] = lid;
    rec[2] = id;
    PutAddress(rec + 3, peer);
    PutAddress(rec + 9, local);
  }
}

static void Connected(StreamEngine* e, int id, int err) {
  StreamConn& c = e->conns[id];
  c.kind = Kind::Held;
  e->timed--;
  double* rec = StreamEmit(e);
  rec[0] = kEvConnected;
  rec[1] = id;
  rec[2] = err;
  // Asked for by streamDialJoin: the pair starts now, before JavaScript sees the record (1: joined).
  const bool joined = err == 0 && StreamJoinAtConnect(e, id);
  rec[3] = joined ? 1 : 0;
  if (err != 0) return StreamCloseConn(e, id);
  StreamWatch(e);
  if (!joined) return;
  // The client's first bytes usually wait already (sent while the upstream was dialed): they go
  // now, before this batch is delivered and before the next look at the set, so the upstream works
  // on them while JavaScript takes the batch. No edge has told the client's readiness yet (it was
  // not registered edge-triggered), and unknown counts as ready: one read tells (an empty queue
  // costs one EAGAIN); the edges its registration reports follow as usual. The pair may end here
  // (a client that reset): its end record then follows the connected one in this batch.
  int client = e->conns[id].other;
  e->conns[client].ready |= kReadyInClient | kReadyOutClient;
  Pump(e, client);
}

static void Dispatch(StreamEngine* e, int id, uint32_t events) {
  if (id < 0 || id >= static_cast<int>(e->conns.size())) return;
  StreamConn& c = e->conns[id];
  if (c.fd < 0) return;
  switch (c.kind) {
    case Kind::Listener:
      return Accept(e, id);
    case Kind::Held: {
      // A dialed connection is registered edge-triggered from its dial on: its edges are kept (as
      // its own kReady*Client bits) for the pair it will join; only a watch is told.
      if (!c.watched) return NoteReady(&c, 0, events);
      c.watched = false;
      double* rec = StreamEmit(e);
      rec[0] = kEvReadable;
      rec[1] = id;
      return;
    }
    case Kind::Dialing: {
      // Writable without an error is connected; only a failure needs SO_ERROR for its errno.
      int err = 0;
      if (events & (EPOLLERR | EPOLLHUP)) {
        socklen_t len = sizeof err;
        getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err == 0) err = ECONNREFUSED;
      } else if (!(events & EPOLLOUT)) {
        return;
      }
      NoteReady(&c, 0, events);
      return Connected(e, id, err);
    }
    case Kind::PipedClient:
      NoteReady(&c, 0, events);
      return Pump(e, id);
    case Kind::PipedUpstream:
      NoteReady(&e->conns[c.other], 1, events);
      return Pump(e, c.other);
    case Kind::TrunkConn:
    case Kind::TrunkPlain:
      NoteReady(&c, 0, events);
      return TrunkOnEvent(e, id);
    case Kind::Relayed:
      return RelayedDispatch(e, id, events);
    default:
      return;
  }
}

// Closes what a pass ended (close_later). Runs before the next look at the set and before its
// ids are free again (RecycleIds at the start of a pass), so no event of a descriptor still open
// can reach an id taken by a new connection, and no descriptor number is reused while open.
static void CloseEnded(StreamEngine* e) {
  e->close_later = false;
  for (int fd : e->closing) close(fd);
  e->closing.clear();
}

void StreamOnReadable(uv_poll_t* handle, int status, int events) {
  StreamEngine* e = static_cast<StreamEngine*>(handle->data);
  if (e->destroyed) return;
  uint64_t started = StreamModerateStart(e);
  uint64_t read0 = e->read_bytes;
  for (int pass = 0; pass < kSetupPasses && !e->destroyed; pass++) {
    // Every connection is accepted and dialed while a batch is built or delivered, so ids would
    // otherwise never come back: the table would grow by two per connection for good.
    RecycleIds(e);
    e->setup_started = false;
    e->in_batch = true;
    for (int round = 0; round < 8 && !e->destroyed; round++) {
      epoll_event evs[256];
      int n = epoll_wait(e->epfd, evs, 256, 0);
      // The replies and first bytes of this look, and the dials its delivery starts, go before
      // the closes of the pairs it ended (a close with its FIN and TIME_WAIT is the dearest call).
      e->close_later = true;
      for (int k = 0; k < n && !e->destroyed; k++) Dispatch(e, static_cast<int>(evs[k].data.u32), evs[k].events);
      if (n < 256) break;
      CloseEnded(e);  // a full look: the next epoll_wait must not see them
    }
    TrunkFlushDirty(e);
    e->in_batch = false;
    StreamDeliver(e);
    CloseEnded(e);
    if (!e->setup_started) break;
  }
  StreamModerateAfter(e, started, e->read_bytes - read0);
}

void StreamOnTick(uv_timer_t* handle) {
  StreamEngine* e = static_cast<StreamEngine*>(handle->data);
  if (e->destroyed) return;
  uint64_t now = uv_now(e->loop);
  RecycleIds(e);
  e->in_batch = true;
  for (size_t i = 0; i < e->conns.size() && !e->destroyed; i++) {
    StreamConn& c = e->conns[i];
    if (c.fd < 0) continue;
    int id = static_cast<int>(i);
    if (c.kind == Kind::Listener && c.paused) {
      c.paused = false;
      e->timed--;
      StreamCtl(e, id, EPOLL_CTL_MOD, EPOLLIN);
      StreamWatch(e);
    } else if (c.kind == Kind::Dialing && now >= c.deadline) {
      Connected(e, id, ETIMEDOUT);
    } else if (c.kind == Kind::PipedClient && c.idle_ms > 0 && now >= c.deadline) {
      EndPair(e, id, kEndIdle, 0);
    } else if (c.kind == Kind::TrunkPlain && c.idle_ms > 0 && now >= c.deadline) {
      TrunkIdle(e, id);
    } else if (c.kind == Kind::Relayed) {
      RelayedTick(e, id, now);
    }
  }
  TrunkFlushDirty(e);
  e->in_batch = false;
  StreamDeliver(e);
}

// A pipe for one direction, from the pool when it has one.
int StreamTakePipe(StreamEngine* e, int* r, int* w, uint32_t* slots) {
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
