// Relayed connections (stream-relayed.h): one plain connection of the engine whose bytes go to and
// come from JavaScript (a multiplexed tunnel stream's end), without a Node socket. See the header
// for the contract; the engine hooks are Dispatch (RelayedDispatch), the tick (RelayedTick) and
// StreamCloseConn (RelayedFree).
#include "stream-relayed.h"
#include "stream-internal.h"
#include "napi-util.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace sluice {

struct RelayedConn {
  bool reading = true;   // JavaScript wants bytes (not paused)
  bool eof = false;      // the FIN was read: no more reads
  bool shut = false;     // our FIN was sent (streamRelayedShutdown)
  uint32_t interest = 0; // what the set holds for it now (EPOLLIN|EPOLLRDHUP, EPOLLOUT); ~0u: not in the set
  std::vector<uint8_t> held;  // bytes a write could not send yet, from held_off on
  size_t held_off = 0;
};

namespace {

// An interest no registration has: the next Rearm calls epoll_ctl whatever it wants.
constexpr uint32_t kForce = 0x80000000u;

void Touch(StreamEngine* e, StreamConn& c) {
  if (c.idle_ms > 0) c.deadline = uv_now(e->loop) + c.idle_ms;
}

// Makes the set's interest what the relay needs now: reading while wanted and before the FIN,
// writability while bytes are held. Level-triggered, so a connection left readable is reported
// again at the next look (one read per connection per look: no connection starves the others).
int Rearm(StreamEngine* e, int id) {
  StreamConn& c = e->conns[id];
  RelayedConn* r = c.relayed;
  uint32_t want = (r->reading && !r->eof ? uint32_t(EPOLLIN | EPOLLRDHUP) : 0u) | (r->held.size() > r->held_off ? uint32_t(EPOLLOUT) : 0u);
  if (want == r->interest) return 0;
  if (StreamCtl(e, id, c.in_set ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, want) < 0) return -errno;
  r->interest = want;
  return 0;
}

void EmitError(StreamEngine* e, int id, int err) {
  double* rec = StreamEmit(e);
  rec[0] = kEvRelayedError;
  rec[1] = id;
  rec[2] = err;
  StreamConn& c = e->conns[id];  // taken after StreamEmit: a delivery may have grown or closed it
  if (c.fd < 0 || c.relayed == nullptr) return;
  // Reported once: the connection leaves the set until JavaScript closes it.
  if (c.in_set) {
    epoll_ctl(e->epfd, EPOLL_CTL_DEL, c.fd, nullptr);
    c.in_set = false;
  }
  c.relayed->interest = ~0u;
  c.relayed->reading = false;
  c.relayed->eof = true;
  c.relayed->held.clear();
  c.relayed->held_off = 0;
}

// One read; returns the bytes read (0 at the FIN, an error or nothing to read).
size_t ReadOnce(StreamEngine* e, int id) {
  // Records not yet delivered name the data area up to relayed_off; with none pending it is free.
  if (e->ev_count == 0) e->relayed_off = 0;
  if (e->relayed_off + kRelayedRead > e->relayed_cap) {
    StreamDeliver(e);
    e->relayed_off = 0;
    if (e->conns[id].fd < 0 || e->conns[id].relayed == nullptr || !e->conns[id].relayed->reading) return 0;
  }
  StreamConn& c = e->conns[id];
  ssize_t n;
  do {
    n = recv(c.fd, e->relayed_data + e->relayed_off, kRelayedRead, MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) EmitError(e, id, errno);
    return 0;
  }
  if (n == 0) {
    c.relayed->eof = true;
    // Both FINs now: JavaScript closes it in this batch (close leaves the set), so no epoll_ctl.
    if (!c.relayed->shut) Rearm(e, id);
    double* rec = StreamEmit(e);
    rec[0] = kEvRelayedFin;
    rec[1] = id;
    return 0;
  }
  size_t off = e->relayed_off;
  e->relayed_off += static_cast<size_t>(n);
  c.bytes_from_client += n;
  Touch(e, c);
  double* rec = StreamEmit(e);  // may deliver earlier records: this one's bytes stay where they are
  rec[0] = kEvRelayedData;
  rec[1] = id;
  rec[2] = static_cast<double>(off);
  rec[3] = static_cast<double>(n);
  return static_cast<size_t>(n);
}

// Sends held bytes; returns how many left, or -errno.
ssize_t Flush(StreamConn& c) {
  RelayedConn* r = c.relayed;
  size_t sent = 0;
  while (r->held_off < r->held.size()) {
    ssize_t w = send(c.fd, r->held.data() + r->held_off, r->held.size() - r->held_off, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return -errno;
    }
    r->held_off += static_cast<size_t>(w);
    sent += static_cast<size_t>(w);
  }
  if (r->held_off == r->held.size()) {
    r->held.clear();
    r->held_off = 0;
  }
  c.bytes_to_client += static_cast<double>(sent);
  return static_cast<ssize_t>(sent);
}

}  // namespace

void RelayedDispatch(StreamEngine* e, int id, uint32_t events) {
  StreamConn& c = e->conns[id];
  RelayedConn* r = c.relayed;
  if (r == nullptr || r->interest == ~0u) return;
  if ((events & EPOLLERR) && !(events & EPOLLIN)) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    return EmitError(e, id, err != 0 ? err : ECONNRESET);
  }
  if ((events & EPOLLOUT) && r->held.size() > r->held_off) {
    ssize_t sent = Flush(c);
    if (sent < 0) return EmitError(e, id, static_cast<int>(-sent));
    if (sent > 0) {
      Touch(e, c);
      double* rec = StreamEmit(e);
      rec[0] = kEvRelayedDrained;
      rec[1] = id;
      rec[2] = static_cast<double>(sent);
    }
    if (e->conns[id].fd < 0 || e->conns[id].relayed != r) return;  // closed during a delivery
    if (r->held_off == 0 && r->held.empty()) Rearm(e, id);
  }
  if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) && r->reading && !r->eof) {
    // A full read suggests more waiting: a few more now (bulk costs fewer wake-ups and batches),
    // never more than kRelayedReadsPerLook, so a busy connection cannot starve the others.
    for (int k = 0; k < kRelayedReadsPerLook; k++) {
      if (ReadOnce(e, id) < kRelayedRead) return;
      StreamConn& again = e->conns[id];
      if (again.fd < 0 || again.relayed != r || !r->reading || r->eof) return;
    }
    return;
  }
  if ((events & EPOLLHUP) && (r->eof || !r->reading) && r->held.empty()) {
    // Both ways done (or paused) and nothing to send: quiet until JavaScript decides.
    StreamCtl(e, id, EPOLL_CTL_DEL, 0);
    r->interest = ~0u;
  }
}

void RelayedTick(StreamEngine* e, int id, uint64_t now) {
  StreamConn& c = e->conns[id];
  if (c.idle_ms == 0 || now < c.deadline) return;
  c.deadline = UINT64_MAX;  // reported once; JavaScript ends the relay
  double* rec = StreamEmit(e);
  rec[0] = kEvRelayedIdle;
  rec[1] = id;
}

void RelayedFree(StreamEngine* e, StreamConn* c) {
  delete c->relayed;
  c->relayed = nullptr;
}

namespace {

bool GetRelayed(napi_env env, napi_value* argv, StreamEngine** e, int* id) {
  void* p = nullptr;
  if (napi_get_value_external(env, argv[0], &p) != napi_ok || p == nullptr || static_cast<StreamEngine*>(p)->destroyed) {
    napi_throw_error(env, "SLUICE_NATIVE", "not a live stream engine");
    return false;
  }
  *e = static_cast<StreamEngine*>(p);
  int32_t i = -1;
  napi_get_value_int32(env, argv[1], &i);
  if (i < 0 || i >= static_cast<int>((*e)->conns.size()) || (*e)->conns[i].fd < 0 || (*e)->conns[i].kind != Kind::Relayed) {
    napi_throw_error(env, "SLUICE_NATIVE", "no such relayed connection");
    return false;
  }
  *id = i;
  return true;
}

napi_value Int(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

// streamRelayedInit(engine, data: Uint8Array): the area data records point into (at least 64 KiB;
// the caller keeps it alive as long as the engine).
napi_value Init(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!Args(env, info, 2, argv)) return nullptr;
  void* p = nullptr;
  if (napi_get_value_external(env, argv[0], &p) != napi_ok || p == nullptr) {
    napi_throw_type_error(env, nullptr, "not a stream engine");
    return nullptr;
  }
  StreamEngine* e = static_cast<StreamEngine*>(p);
  uint8_t* data;
  size_t len;
  if (!StreamBytes(env, argv[1], &data, &len)) return nullptr;
  if (len < kRelayedRead) {
    napi_throw_range_error(env, nullptr, "the data area must hold at least 65536 bytes");
    return nullptr;
  }
  e->relayed_data = data;
  e->relayed_cap = len;
  e->relayed_off = 0;
  return nullptr;
}

// streamRelayed(engine, id, idleTimeoutMs): a held connection becomes relayed (reads reported as
// data records from now on). Throws when it is not held or the set refuses it.
napi_value Start(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!Args(env, info, 3, argv)) return nullptr;
  void* p = nullptr;
  napi_get_value_external(env, argv[0], &p);
  StreamEngine* e = static_cast<StreamEngine*>(p);
  int32_t id = -1, idle = 0;
  napi_get_value_int32(env, argv[1], &id);
  napi_get_value_int32(env, argv[2], &idle);
  if (e == nullptr || e->destroyed || e->relayed_data == nullptr || id < 0 || id >= static_cast<int>(e->conns.size()) ||
      e->conns[id].fd < 0 || e->conns[id].kind != Kind::Held || e->conns[id].join >= 0) {
    napi_throw_error(env, "SLUICE_NATIVE", "only a held connection of an engine with a data area can be relayed");
    return nullptr;
  }
  StreamConn& c = e->conns[id];
  c.relayed = new RelayedConn();
  c.kind = Kind::Relayed;
  c.watched = false;
  c.relayed->interest = kForce;  // the first Rearm registers it whatever the set held
  int err = Rearm(e, id);
  if (err < 0) {
    RelayedFree(e, &c);
    c.kind = Kind::Held;
    napi_throw_error(env, "SLUICE_NATIVE", strerror(-err));
    return nullptr;
  }
  if (idle > 0) {
    c.idle_ms = static_cast<uint32_t>(idle);
    c.deadline = uv_now(e->loop) + c.idle_ms;
    e->timed++;
    StreamNoteTimeout(e, c.idle_ms);
    StreamWatch(e);
  }
  return nullptr;
}

// streamRelayedWrite(engine, id, buf) -> bytes of `buf` held in the engine (sent once writable,
// reported by drained records), or -errno. Never blocks.
napi_value Write(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  StreamEngine* e;
  int id;
  if (!Args(env, info, 3, argv) || !GetRelayed(env, argv, &e, &id)) return nullptr;
  uint8_t* data;
  size_t len;
  if (!StreamBytes(env, argv[2], &data, &len)) return nullptr;
  StreamConn& c = e->conns[id];
  RelayedConn* r = c.relayed;
  if (r->interest == ~0u && r->eof && !r->reading) return Int(env, -EPIPE);  // failed already
  size_t sent = 0;
  if (r->held.size() == r->held_off) {
    while (sent < len) {
      ssize_t w = send(c.fd, data + sent, len - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        return Int(env, -errno);
      }
      sent += static_cast<size_t>(w);
    }
    c.bytes_to_client += static_cast<double>(sent);
    if (sent > 0) Touch(e, c);
  }
  if (sent < len) {
    r->held.insert(r->held.end(), data + sent, data + len);
    int err = Rearm(e, id);
    if (err < 0) return Int(env, err);
  }
  return Int(env, static_cast<double>(len - sent));
}

// streamRelayedShutdown(engine, id): sends the FIN (the caller waits until nothing is held).
napi_value Shutdown(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  StreamEngine* e;
  int id;
  if (!Args(env, info, 2, argv) || !GetRelayed(env, argv, &e, &id)) return nullptr;
  shutdown(e->conns[id].fd, SHUT_WR);
  e->conns[id].relayed->shut = true;
  return nullptr;
}

// streamRelayedPause(engine, id, paused): stops or restarts reading (the stream's window is full).
napi_value Pause(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  StreamEngine* e;
  int id;
  if (!Args(env, info, 3, argv) || !GetRelayed(env, argv, &e, &id)) return nullptr;
  bool paused = false;
  napi_get_value_bool(env, argv[2], &paused);
  RelayedConn* r = e->conns[id].relayed;
  if (r->interest == ~0u && r->eof) return nullptr;  // failed or done: nothing to read
  r->reading = !paused;
  if (r->interest == ~0u) r->interest = kForce;  // out of the set after a hang-up while paused: back in
  Rearm(e, id);
  return nullptr;
}

}  // namespace

void RegisterStreamRelayed(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"streamRelayedInit", nullptr, Init, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"streamRelayed", nullptr, Start, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"streamRelayedWrite", nullptr, Write, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"streamRelayedShutdown", nullptr, Shutdown, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"streamRelayedPause", nullptr, Pause, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}

}  // namespace sluice
