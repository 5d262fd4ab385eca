// N-API surface of the stream engine (stream.h). src/datapath/native/stream-binding.ts declares
// these functions; every call is synchronous and made on the JavaScript thread. Socket calls
// throw Node-style system errors (code, errno, syscall) or return -errno where noted.
#include "stream-internal.h"
#include "stream-sealed.h"
#include "stream-trunk.h"
#include "stream-relayed.h"
#include "napi-util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace sluice {
namespace {

napi_value Throw(napi_env env, const char* message) {
  napi_throw_error(env, "SLUICE_NATIVE", message);
  return nullptr;
}

napi_value ThrowErrno(napi_env env, int err, const char* syscall, const char* detail) {
  napi_throw(env, ErrnoError(env, err, syscall, detail));
  return nullptr;
}

napi_value Num(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

StreamEngine* Get(napi_env env, napi_value v, bool quiet = false) {
  void* p = nullptr;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == nullptr) {
    if (!quiet) napi_throw_type_error(env, nullptr, "not a stream engine");
    return nullptr;
  }
  StreamEngine* e = static_cast<StreamEngine*>(p);
  if (e->destroyed) {
    if (!quiet) napi_throw_error(env, "SLUICE_NATIVE", "stream engine destroyed");
    return nullptr;
  }
  return e;
}

// The engine and an open connection id from the first two arguments.
bool GetConn(napi_env env, napi_value* argv, StreamEngine** e, int* id) {
  *e = Get(env, argv[0]);
  if (*e == nullptr) return false;
  if (napi_get_value_int32(env, argv[1], id) != napi_ok || *id < 0 || *id >= static_cast<int>((*e)->conns.size()) ||
      (*e)->conns[*id].fd < 0) {
    napi_throw_error(env, "SLUICE_NATIVE", "no such connection");
    return false;
  }
  return true;
}

int32_t Int32(napi_env env, napi_value v) {
  int32_t out = 0;
  napi_get_value_int32(env, v, &out);
  return out;
}

bool Bytes(napi_env env, napi_value v, uint8_t** data, size_t* len) {
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  void* p;
  if (napi_get_typedarray_info(env, v, &type, len, &p, &ab, &offset) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, nullptr, "expected a Uint8Array");
    return false;
  }
  *data = static_cast<uint8_t*>(p);
  return true;
}

bool IsWildcard(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) return reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr.s_addr == htonl(INADDR_ANY);
  return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr);
}

void Release(StreamEngine* e) {
  if (--e->owners == 0) delete e;
}

void OnClosed(uv_handle_t* h) { Release(static_cast<StreamEngine*>(h->data)); }

void Teardown(StreamEngine* e) {
  if (e->destroyed) return;
  for (size_t i = 0; i < e->conns.size(); i++) StreamCloseConn(e, static_cast<int>(i));
  for (size_t i = 0; i + 2 < e->pipe_pool.size(); i += 3) StreamClosePipe(e, e->pipe_pool[i], e->pipe_pool[i + 1], e->pipe_pool[i + 2]);
  e->pipe_pool.clear();
  SealedPoolClear(e);
  e->destroyed = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&e->poll), OnClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&e->timer), OnClosed);
  close(e->epfd);
  e->epfd = -1;
  if (e->ev_ref != nullptr) napi_delete_reference(e->env, e->ev_ref);
  if (e->on_events != nullptr) napi_delete_reference(e->env, e->on_events);
  e->ev_ref = e->on_events = nullptr;
  if (e->actx != nullptr) napi_async_destroy(e->env, e->actx);
  e->actx = nullptr;
}

void Finalize(napi_env env, void* data, void* hint) {
  StreamEngine* e = static_cast<StreamEngine*>(data);
  Teardown(e);
  Release(e);
}

// streamOpen(events: Float64Array, onEvents: (n) => void) -> engine
napi_value Open(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!Args(env, info, 2, argv)) return nullptr;
  napi_typedarray_type type;
  size_t length, offset;
  void* p;
  napi_value ab;
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &p, &ab, &offset) != napi_ok || type != napi_float64_array) {
    napi_throw_type_error(env, nullptr, "expected a Float64Array");
    return nullptr;
  }
  if (length < static_cast<size_t>(kEvRec)) return Throw(env, "event memory too small");
  StreamEngine* e = new StreamEngine();
  e->env = env;
  e->ev = static_cast<double*>(p);
  e->ev_max = static_cast<int>(length / kEvRec);
  e->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (e->epfd < 0) {
    int err = errno;
    delete e;
    return ThrowErrno(env, err, "epoll_create1", "");
  }
  if (napi_get_uv_event_loop(env, &e->loop) != napi_ok || uv_poll_init(e->loop, &e->poll, e->epfd) != 0 ||
      uv_timer_init(e->loop, &e->timer) != 0) {
    close(e->epfd);
    delete e;
    return Throw(env, "cannot watch the epoll set");
  }
  e->poll.data = e;
  e->timer.data = e;
  RecordCiphersInit(e->ciphers);
  // Strong: the engine calls back into both for as long as it is open (destroy() drops them).
  napi_create_reference(env, argv[0], 1, &e->ev_ref);
  napi_create_reference(env, argv[1], 1, &e->on_events);
  napi_value name;
  napi_create_string_utf8(env, "SluiceStreamDatapath", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, nullptr, name, &e->actx);
  napi_value out;
  if (napi_create_external(env, e, Finalize, nullptr, &out) != napi_ok) return Throw(env, "cannot wrap the engine");
  return out;
}

// streamListen(engine, host, port, backlog) -> id. Exclusive bind; `::` is dual-stack.
napi_value Listen(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!Args(env, info, 4, argv)) return nullptr;
  StreamEngine* e = Get(env, argv[0]);
  if (e == nullptr) return nullptr;
  SocketAddress a;
  int fd = OpenSocket(env, argv, SOCK_STREAM, "bind", &a);
  if (fd < 0) return nullptr;
  int one = 1, off = 0;
  // As Node's servers: a restarted process may bind while old connections sit in TIME_WAIT.
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (a.addr.sin6_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  // Before listen(): accepted sockets take the listener's congestion control.
  if (int err = StreamApplyCongestion(e, fd, a.addr); err != 0) {
    close(fd);
    return ThrowErrno(env, err, "setsockopt TCP_CONGESTION", a.text);
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&a.addr), a.len) < 0 || listen(fd, Int32(env, argv[3])) < 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(env, err, "listen", a.text);
  }
  // Accepted sockets inherit TCP_NODELAY from the listener: no setsockopt per connection.
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int id = StreamAdopt(e, fd, Kind::Listener);
  sockaddr_storage local;
  socklen_t llen = sizeof local;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen) == 0 && !IsWildcard(local)) e->bound[id] = local;
  if (StreamCtl(e, id, EPOLL_CTL_ADD, EPOLLIN) < 0) {
    int err = errno;
    StreamCloseConn(e, id);
    return ThrowErrno(env, err, "epoll_ctl", a.text);
  }
  StreamWatch(e);
  return Num(env, id);
}

// streamLocal(engine, id) -> [family, address, port]
napi_value Local(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  StreamEngine* e;
  int id;
  if (!Args(env, info, 2, argv) || !GetConn(env, argv, &e, &id)) return nullptr;
  return LocalAddressOf(env, e->conns[id].fd);
}

// streamDial(engine, host, port, timeoutMs) -> id; a `connected` event follows.
napi_value Dial(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!Args(env, info, 4, argv)) return nullptr;
  StreamEngine* e = Get(env, argv[0]);
  if (e == nullptr) return nullptr;
  SocketAddress a;
  int fd = OpenSocket(env, argv, SOCK_STREAM, "connect", &a);
  if (fd < 0) return nullptr;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // Before connect(), so the kernel's default never starts on it. A failure (the algorithm gone
  // since start, where it was checked) leaves the default: a dial does not fail for it.
  StreamApplyCongestion(e, fd, a.addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a.addr), a.len) < 0 && errno != EINPROGRESS) {
    int err = errno;
    close(fd);
    return ThrowErrno(env, err, "connect", a.text);
  }
  int id = StreamAdopt(e, fd, Kind::Dialing);
  // Registered once, edge-triggered, as a pair wants it: the first writability (or error) is the
  // dial's outcome, later edges are ignored until the connection is piped (which then needs no
  // epoll_ctl for it) or watched.
  if (StreamCtl(e, id, EPOLL_CTL_ADD, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) < 0) {
    int err = errno;
    e->conns[id].kind = Kind::Held;
    StreamCloseConn(e, id);
    return ThrowErrno(env, err, "epoll_ctl", a.text);
  }
  uint32_t timeout = static_cast<uint32_t>(Int32(env, argv[3]));
  e->conns[id].deadline = uv_now(e->loop) + (timeout > 0 ? timeout : 1u << 31);
  e->timed++;
  if (timeout > 0) StreamNoteTimeout(e, timeout);
  e->setup_started = true;
  StreamWatch(e);
  return Num(env, id);
}

// streamWatch(engine, id): one `readable` event when a held connection has bytes, a FIN or an error.
napi_value Watch(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  StreamEngine* e;
  int id;
  if (!Args(env, info, 2, argv) || !GetConn(env, argv, &e, &id)) return nullptr;
  if (e->conns[id].kind != Kind::Held) return Throw(env, "only a held connection can be watched");
  uint32_t ev = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
  if (StreamCtl(e, id, e->conns[id].in_set ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, ev) < 0) return ThrowErrno(env, errno, "epoll_ctl", "");
  e->conns[id].watched = true;
  return nullptr;
}

// streamRead(engine, id, buf) -> bytes read from a held connection (a PROXY header and what
// came with it), 0 at EOF, or -errno (-EAGAIN: nothing yet).
napi_value Read(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  StreamEngine* e;
  int id;
  uint8_t* data;
  size_t len;
  if (!Args(env, info, 3, argv) || !GetConn(env, argv, &e, &id) || !Bytes(env, argv[2], &data, &len)) return nullptr;
  ssize_t n = recv(e->conns[id].fd, data, len, MSG_DONTWAIT);
  return Num(env, n < 0 ? -errno : static_cast<double>(n));
}

// streamWrite(engine, id, buf) -> bytes written or -errno (a PROXY header, before any piped byte).
napi_value Write(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  StreamEngine* e;
  int id;
  uint8_t* data;
  size_t len;
  if (!Args(env, info, 3, argv) || !GetConn(env, argv, &e, &id) || !Bytes(env, argv[2], &data, &len)) return nullptr;
  ssize_t n = send(e->conns[id].fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
  return Num(env, n < 0 ? -errno : static_cast<double>(n));
}

// streamPipe(engine, client, upstream, idleMs): the pair's bytes move in the engine from now on.
napi_value Pipe(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  StreamEngine* e;
  int client, upstream;
  if (!Args(env, info, 4, argv) || !GetConn(env, argv, &e, &client)) return nullptr;
  napi_value second[2] = {argv[0], argv[2]};
  if (!GetConn(env, second, &e, &upstream)) return nullptr;
  if (e->conns[client].kind != Kind::Held || e->conns[upstream].kind != Kind::Held || client == upstream) {
    return Throw(env, "only two held connections can be piped");
  }
  int err = StreamStartPair(e, client, upstream, static_cast<uint32_t>(Int32(env, argv[3])));
  if (err < 0) return ThrowErrno(env, -err, "epoll_ctl", "");
  return nullptr;
}

// streamClose(engine, id) -> [bytes from client, bytes to client] of a pair (both closed), else
// undefined. Idempotent: an id already closed is ignored. No end event follows.
napi_value Close(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!Args(env, info, 2, argv)) return nullptr;
  StreamEngine* e = Get(env, argv[0], true);
  int32_t id = Int32(env, argv[1]);
  if (e == nullptr || id < 0 || id >= static_cast<int>(e->conns.size()) || e->conns[id].fd < 0) return nullptr;
  StreamConn& c = e->conns[id];
  if (c.kind == Kind::PipedUpstream) id = c.other;
  if (c.kind == Kind::TrunkConn) {
    // Its streams end (upstream-error) with end records, then the trunk's own.
    TrunkFail(e, id, ECONNABORTED);
    TrunkFlushDirty(e);
    return nullptr;
  }
  StreamConn& client = e->conns[id];
  if (client.kind == Kind::TrunkPlain) {
    // A stream of a trunk: RESET to the peer, no end record.
    napi_value out;
    napi_create_array_with_length(env, 2, &out);
    napi_set_element(env, out, 0, Num(env, client.bytes_from_client));
    napi_set_element(env, out, 1, Num(env, client.bytes_to_client));
    StreamCloseConn(e, id);
    TrunkFlushDirty(e);
    return out;
  }
  if (client.kind != Kind::PipedClient) {
    StreamCloseConn(e, id);
    return nullptr;
  }
  napi_value out;
  napi_create_array_with_length(env, 2, &out);
  napi_set_element(env, out, 0, Num(env, client.bytes_from_client));
  napi_set_element(env, out, 1, Num(env, client.bytes_to_client));
  StreamCloseConn(e, client.other);
  StreamCloseConn(e, id);
  return out;
}

// streamRelease(engine, id) -> fd: the connection leaves the engine, its descriptor is the caller's.
napi_value ReleaseFd(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  StreamEngine* e;
  int id;
  if (!Args(env, info, 2, argv) || !GetConn(env, argv, &e, &id)) return nullptr;
  if (e->conns[id].kind != Kind::Held) return Throw(env, "only a held connection can be released");
  int fd = e->conns[id].fd;
  StreamUnjoin(e, id);
  if (e->conns[id].in_set) epoll_ctl(e->epfd, EPOLL_CTL_DEL, fd, nullptr);
  e->conns[id].fd = -1;
  e->conns[id] = StreamConn();
  e->pending_ids.push_back(id);
  e->active--;
  StreamWatch(e);
  return Num(env, fd);
}

// streamCounters(engine, ids: Int32Array, n, out: Float64Array): 2 numbers per piped client id
// (bytes from client, bytes to client); -1 for an id that is not a live pair.
napi_value Counters(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!Args(env, info, 4, argv)) return nullptr;
  StreamEngine* e = Get(env, argv[0]);
  if (e == nullptr) return nullptr;
  napi_typedarray_type t1, t2;
  size_t l1, l2, off;
  void *p1, *p2;
  napi_value ab;
  if (napi_get_typedarray_info(env, argv[1], &t1, &l1, &p1, &ab, &off) != napi_ok || t1 != napi_int32_array ||
      napi_get_typedarray_info(env, argv[3], &t2, &l2, &p2, &ab, &off) != napi_ok || t2 != napi_float64_array) {
    napi_throw_type_error(env, nullptr, "expected an Int32Array and a Float64Array");
    return nullptr;
  }
  int32_t* ids = static_cast<int32_t*>(p1);
  double* out = static_cast<double*>(p2);
  size_t n = static_cast<size_t>(Int32(env, argv[2]));
  if (n > l1) n = l1;
  if (n * 2 > l2) n = l2 / 2;
  for (size_t i = 0; i < n; i++) {
    int id = ids[i];
    bool live = id >= 0 && id < static_cast<int>(e->conns.size()) && (e->conns[id].kind == Kind::PipedClient || e->conns[id].kind == Kind::TrunkPlain);
    out[2 * i] = live ? e->conns[id].bytes_from_client : -1;
    out[2 * i + 1] = live ? e->conns[id].bytes_to_client : -1;
  }
  return nullptr;
}

// streamDestroy(engine): closes everything; the engine is unusable afterwards.
// streamResetOnClose(engine, id): the connection's close sends an RST instead of a FIN (SO_LINGER
// 0): at once for a held one the caller then closes, at its pair's stop for a joined one.
napi_value ResetOnClose(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  StreamEngine* e;
  int id;
  if (!Args(env, info, 2, argv) || !GetConn(env, argv, &e, &id)) return nullptr;
  linger l = {1, 0};
  setsockopt(e->conns[id].fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  return nullptr;
}

napi_value Destroy(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!Args(env, info, 1, argv)) return nullptr;
  StreamEngine* e = Get(env, argv[0], true);
  if (e != nullptr) Teardown(e);
  return nullptr;
}

}  // namespace

napi_value StreamDialCall(napi_env env, napi_callback_info info) { return Dial(env, info); }
bool StreamBytes(napi_env env, napi_value v, uint8_t** data, size_t* len) { return Bytes(env, v, data, len); }

void RegisterStream(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"streamOpen", nullptr, Open, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"streamListen", nullptr, Listen, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"streamLocal", nullptr, Local, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"streamDial", nullptr, Dial, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"streamWatch", nullptr, Watch, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"streamRead", nullptr, Read, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"streamWrite", nullptr, Write, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"streamPipe", nullptr, Pipe, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"streamClose", nullptr, Close, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"streamRelease", nullptr, ReleaseFd, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"streamCounters", nullptr, Counters, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"streamDestroy", nullptr, Destroy, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"streamPipeSealed", nullptr, SealedPipeApi, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"streamSealedLimits", nullptr, SealedLimitsApi, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"streamRecordCipher", nullptr, RecordCipherApi, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"streamResetOnClose", nullptr, ResetOnClose, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  RegisterStreamJoin(env, exports);
  RegisterStreamCongestion(env, exports);
  RegisterStreamTrunk(env, exports);
  RegisterStreamRelayed(env, exports);
}

}  // namespace sluice
