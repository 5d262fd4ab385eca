// N-API surface of the native UDP datapath. src/datapath/native/binding.ts declares these
// functions; every call is synchronous and made on the JavaScript thread.
#include "engine.h"
#include "forward.h"
#include "stream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

namespace sluice {
namespace {

#define CHECK_NAPI(call)                                   \
  do {                                                     \
    if ((call) != napi_ok) return Throw(env, "N-API call failed: " #call); \
  } while (0)

napi_value Throw(napi_env env, const char* message) {
  napi_throw_error(env, "SLUICE_NATIVE", message);
  return nullptr;
}

napi_value ThrowErrno(napi_env env, int err, const char* syscall, const char* detail) {
  napi_throw(env, ErrnoError(env, err, syscall, detail));
  return nullptr;
}

}  // namespace (Int and Args are shared with seal.cc)

napi_value Int(napi_env env, int v) {
  napi_value out;
  napi_create_int32(env, v, &out);
  return out;
}

bool Args(napi_env env, napi_callback_info info, size_t want, napi_value* argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < want) {
    napi_throw_type_error(env, nullptr, "missing arguments");
    return false;
  }
  return true;
}

bool ParseAddress(napi_env env, napi_value host, napi_value port, sockaddr_in6* out, socklen_t* len, char* text) {
  size_t n;
  if (napi_get_value_string_utf8(env, host, text, 64, &n) != napi_ok) return false;
  int32_t p;
  if (napi_get_value_int32(env, port, &p) != napi_ok || p < 0 || p > 65535) return false;
  memset(out, 0, sizeof *out);
  sockaddr_in* v4 = reinterpret_cast<sockaddr_in*>(out);
  if (inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(p));
    *len = sizeof(sockaddr_in);
    return true;
  }
  if (inet_pton(AF_INET6, text, &out->sin6_addr) == 1) {
    out->sin6_family = AF_INET6;
    out->sin6_port = htons(static_cast<uint16_t>(p));
    *len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

napi_value LocalAddressOf(napi_env env, int fd) {
  sockaddr_in6 addr;
  socklen_t len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) < 0) return ThrowErrno(env, errno, "getsockname", "");
  char text[INET6_ADDRSTRLEN] = "";
  int port;
  int family;
  if (addr.sin6_family == AF_INET) {
    sockaddr_in* a = reinterpret_cast<sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
    port = ntohs(a->sin_port);
    family = 4;
  } else {
    inet_ntop(AF_INET6, &addr.sin6_addr, text, sizeof text);
    port = ntohs(addr.sin6_port);
    family = 6;
  }
  napi_value out, s;
  napi_create_array_with_length(env, 3, &out);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &s);
  napi_set_element(env, out, 0, Int(env, family));
  napi_set_element(env, out, 1, s);
  napi_set_element(env, out, 2, Int(env, port));
  return out;
}

namespace {

Engine* GetEngine(napi_env env, napi_value v) {
  void* p = nullptr;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == nullptr) {
    napi_throw_type_error(env, nullptr, "not a datapath engine");
    return nullptr;
  }
  Engine* e = static_cast<Engine*>(p);
  if (e->destroyed) {
    napi_throw_error(env, "SLUICE_NATIVE", "datapath engine destroyed");
    return nullptr;
  }
  return e;
}

bool GetSock(napi_env env, Engine* e, napi_value v, int* id) {
  if (napi_get_value_int32(env, v, id) != napi_ok || *id < 0 || *id >= static_cast<int>(e->socks.size()) ||
      e->socks[*id].fd < 0) {
    napi_throw_error(env, "SLUICE_NATIVE", "no such socket");
    return false;
  }
  return true;
}


// Registers a new non-blocking socket with the engine; returns its id or -errno.
int Adopt(Engine* e, int fd, int family, bool listener) {
  int id = AllocId(e);
  epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u32 = static_cast<uint32_t>(id);
  if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
    int err = errno;
    ReleaseId(e, id);
    return -err;
  }
  Sock& s = e->socks[id];
  s.fd = fd;
  s.family = family;
  s.listener = listener;
  e->active++;
  Watch(e);
  return id;
}

void CloseSock(Engine* e, int id) {
  Sock& s = e->socks[id];
  if (s.fd < 0) return;
  epoll_ctl(e->epfd, EPOLL_CTL_DEL, s.fd, nullptr);
  close(s.fd);
  UnbindSocket(e, id);
  ForgetForwards(e, id, -1);
  ReleaseId(e, id);
  e->active--;
  Watch(e);
}

void Release(Engine* e) {
  if (--e->owners == 0) delete e;
}

void OnHandleClosed(uv_handle_t* h) { Release(static_cast<Engine*>(h->data)); }

}  // namespace

// Closes the sockets, the poll handle and the epoll set, and drops the references to shared
// memory. The Engine is freed once both the handle is closed and the external is collected.
void Teardown(Engine* e) {
  if (e->destroyed) return;
  for (size_t i = 0; i < e->socks.size(); i++) CloseSock(e, static_cast<int>(i));
  FreeForwards(e);
  FreeSeal(e);
  FreeGro(e);
  FreePark(e);
  StopThread(e);
  e->destroyed = true;
  e->polling = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&e->poll), OnHandleClosed);
  close(e->epfd);
  e->epfd = -1;
  for (napi_ref& r : e->refs) {
    if (r != nullptr) napi_delete_reference(e->env, r);
    r = nullptr;
  }
  if (e->actx != nullptr) napi_async_destroy(e->env, e->actx);
  e->actx = nullptr;
}

namespace {

void Finalize(napi_env env, void* data, void* hint) {
  Engine* e = static_cast<Engine*>(data);
  Teardown(e);
  Release(e);
}

bool TypedArray(napi_env env, napi_value v, void** data, size_t* bytes) {
  napi_typedarray_type type;
  size_t length, offset;
  napi_value ab;
  if (napi_get_typedarray_info(env, v, &type, &length, data, &ab, &offset) != napi_ok || type != napi_int32_array) {
    napi_throw_type_error(env, nullptr, "expected an Int32Array");
    return false;
  }
  *bytes = length * 4;
  return true;
}

// layout(): the record sizes this build uses, and whether the kernel takes UDP_SEGMENT.
napi_value Layout(napi_env env, napi_callback_info info) {
  napi_value o;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "slotBytes", Int(env, kSlotBytes));
  napi_set_named_property(env, o, "rxRecord", Int(env, kRxRec));
  napi_set_named_property(env, o, "txRecord", Int(env, kTxRec));
  napi_set_named_property(env, o, "errRecord", Int(env, kErrRec));
  napi_value gso;
  napi_get_boolean(env, ProbeGso(), &gso);
  napi_set_named_property(env, o, "gso", gso);
  return o;
}

// open(rx, rxm, tx, txm, errm, onBatch, gso, threaded) -> engine
napi_value Open(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  if (!Args(env, info, 8, argv)) return nullptr;
  Engine* e = new Engine();
  e->env = env;
  void* p;
  size_t bytes;
  if (napi_get_arraybuffer_info(env, argv[0], &p, &e->rx_bytes) != napi_ok) { delete e; return Throw(env, "rx must be an ArrayBuffer"); }
  e->rx = static_cast<uint8_t*>(p);
  e->rx_slots = static_cast<int>(e->rx_bytes / kSlotBytes);
  if (!TypedArray(env, argv[1], &p, &bytes)) { delete e; return nullptr; }
  e->rxm = static_cast<int32_t*>(p);
  if (static_cast<int>(bytes / 4 / kRxRec) < e->rx_slots) e->rx_slots = static_cast<int>(bytes / 4 / kRxRec);
  if (napi_get_arraybuffer_info(env, argv[2], &p, &e->tx_bytes) != napi_ok) { delete e; return Throw(env, "tx must be an ArrayBuffer"); }
  e->tx = static_cast<uint8_t*>(p);
  if (!TypedArray(env, argv[3], &p, &bytes)) { delete e; return nullptr; }
  e->txm = static_cast<int32_t*>(p);
  e->tx_max = static_cast<int>(bytes / 4 / kTxRec);
  if (!TypedArray(env, argv[4], &p, &bytes)) { delete e; return nullptr; }
  e->errm = static_cast<int32_t*>(p);
  e->err_max = static_cast<int>(bytes / 4 / kErrRec);
  bool want_gso = false;
  napi_get_value_bool(env, argv[6], &want_gso);
  if (e->rx_slots < 1 || e->tx_max < 1 || e->err_max < 1) { delete e; return Throw(env, "shared memory too small"); }
  e->gso = want_gso && ProbeGso();

  e->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (e->epfd < 0) { int err = errno; delete e; return ThrowErrno(env, err, "epoll_create1", ""); }
  uv_loop_t* loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, &e->poll, e->epfd) != 0) {
    close(e->epfd);
    delete e;
    return Throw(env, "cannot watch the epoll set");
  }
  e->poll.data = e;
  bool threaded = false;
  napi_get_value_bool(env, argv[7], &threaded);
  if (threaded && StartThread(e, loop) != 0) return Throw(env, "cannot start the readiness thread");
  // Weak: NativeDatapath holds all six, so they live exactly as long as it does, and a datapath
  // dropped without destroy() is collected (its sockets closed by the finalizer) instead of being
  // kept alive by its own engine. DrainReady checks they are still there before touching memory.
  for (int i = 0; i < 6; i++) napi_create_reference(env, argv[i], 0, &e->refs[i]);
  e->on_batch = e->refs[5];
  napi_value name;
  napi_create_string_utf8(env, "SluiceUdpDatapath", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, nullptr, name, &e->actx);

  e->rx_hdrs.resize(e->rx_slots);
  e->rx_iovs.resize(e->rx_slots);
  e->rx_names.resize(e->rx_slots);
  for (int i = 0; i < e->rx_slots; i++) {
    e->rx_iovs[i] = {e->rx + static_cast<size_t>(i) * kSlotBytes, static_cast<size_t>(kSlotBytes)};
    memset(&e->rx_hdrs[i], 0, sizeof(mmsghdr));
    e->rx_hdrs[i].msg_hdr.msg_iov = &e->rx_iovs[i];
    e->rx_hdrs[i].msg_hdr.msg_iovlen = 1;
  }
  e->tx_hdrs.resize(e->tx_max);
  e->tx_iovs.resize(2 * e->tx_max);
  e->tx_names.resize(e->tx_max);
  e->tx_cmsg.resize(4 * e->tx_max);
  e->tx_first.resize(e->tx_max);
  e->tx_count.resize(e->tx_max);
  e->tx_segment.resize(e->tx_max);

  napi_value out;
  if (napi_create_external(env, e, Finalize, nullptr, &out) != napi_ok) return Throw(env, "cannot wrap the engine");
  return out;
}

void SetBuffer(int fd, int opt, int32_t bytes) {
  if (bytes > 0) setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes);
}

// listen(engine, host, port, rcvbuf, sndbuf) -> id. Exclusive bind; `::` is dual-stack.
napi_value Listen(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!Args(env, info, 5, argv)) return nullptr;
  Engine* e = GetEngine(env, argv[0]);
  if (e == nullptr) return nullptr;
  SocketAddress a;
  int fd = OpenSocket(env, argv, SOCK_DGRAM, "bind", &a);
  if (fd < 0) return nullptr;
  int family = a.addr.sin6_family;
  if (family == AF_INET6) {
    int off = 0;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  }
  int32_t rcv = 0, snd = 0;
  napi_get_value_int32(env, argv[3], &rcv);
  napi_get_value_int32(env, argv[4], &snd);
  SetBuffer(fd, SO_RCVBUF, rcv);
  SetBuffer(fd, SO_SNDBUF, snd);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a.addr), a.len) < 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(env, err, "bind", a.text);
  }
  int id = Adopt(e, fd, family, true);
  if (id < 0) {
    close(fd);
    return ThrowErrno(env, -id, "epoll_ctl", a.text);
  }
  return Int(env, id);
}

// connect(engine, host, port) -> id: a socket of its own, connected to one upstream.
napi_value Connect(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!Args(env, info, 3, argv)) return nullptr;
  Engine* e = GetEngine(env, argv[0]);
  if (e == nullptr) return nullptr;
  SocketAddress a;
  int fd = OpenSocket(env, argv, SOCK_DGRAM, "connect", &a);
  if (fd < 0) return nullptr;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a.addr), a.len) < 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(env, err, "connect", a.text);
  }
  int id = Adopt(e, fd, a.addr.sin6_family, false);
  if (id < 0) {
    close(fd);
    return ThrowErrno(env, -id, "epoll_ctl", a.text);
  }
  return Int(env, id);
}

// localAddress(engine, id) -> [family, address, port]
napi_value LocalAddress(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!Args(env, info, 2, argv)) return nullptr;
  Engine* e = GetEngine(env, argv[0]);
  int id;
  if (e == nullptr || !GetSock(env, e, argv[1], &id)) return nullptr;
  return LocalAddressOf(env, e->socks[id].fd);
}

// close(engine, id): idempotent; records already staged for it are dropped at the next flush.
napi_value Close(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!Args(env, info, 2, argv)) return nullptr;
  void* p = nullptr;
  napi_get_value_external(env, argv[0], &p);
  Engine* e = static_cast<Engine*>(p);
  int32_t id;
  if (e == nullptr || e->destroyed || napi_get_value_int32(env, argv[1], &id) != napi_ok) return nullptr;
  if (id >= 0 && id < static_cast<int>(e->socks.size())) CloseSock(e, id);
  return nullptr;
}

// flush(engine, count) -> error records written to errm
napi_value FlushCall(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!Args(env, info, 2, argv)) return nullptr;
  Engine* e = GetEngine(env, argv[0]);
  int32_t count;
  if (e == nullptr || napi_get_value_int32(env, argv[1], &count) != napi_ok) return nullptr;
  return Int(env, Flush(e, count));
}

// destroy(engine): closes every socket; the engine is unusable afterwards.
napi_value Destroy(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!Args(env, info, 1, argv)) return nullptr;
  void* p = nullptr;
  napi_get_value_external(env, argv[0], &p);
  if (p != nullptr) Teardown(static_cast<Engine*>(p));
  return nullptr;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"layout", nullptr, Layout, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"open", nullptr, Open, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"listen", nullptr, Listen, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"connect", nullptr, Connect, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"localAddress", nullptr, LocalAddress, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"close", nullptr, Close, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"flush", nullptr, FlushCall, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"destroy", nullptr, Destroy, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  RegisterStream(env, exports);
  RegisterStreamModerate(env, exports);
  RegisterSeal(env, exports);
  RegisterForward(env, exports);
  RegisterHold(env, exports);
  RegisterSockopt(env, exports);
  RegisterForwardFrame(env, exports);
  RegisterGro(env, exports);
  RegisterIsolate(env, exports);
  RegisterPark(env, exports);
  RegisterHeapMemory(env, exports);
  RegisterSchedSlice(env, exports);
  return exports;
}

}  // namespace
}  // namespace sluice

NAPI_MODULE(NODE_GYP_MODULE_NAME, sluice::Init)
