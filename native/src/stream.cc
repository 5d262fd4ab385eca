// The stream engine: readiness, batched accept, non-blocking dial with a deadline, the look at the
// set and the delivery of its records (stream.h). The pump of an established pair is in
// stream-pump.cc, the N-API surface in stream-api.cc.
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
  StreamPump(e, client);
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
      return StreamPump(e, id);
    case Kind::PipedUpstream:
      NoteReady(&e->conns[c.other], 1, events);
      return StreamPump(e, c.other);
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
      StreamEndPair(e, id, kEndIdle, 0);
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

}  // namespace sluice
