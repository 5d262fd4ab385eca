// A socket of its own for one client of a listener (docs/expose.md, "A flooding client's own
// socket"): bound to the listener's address and port, connected to the client. Linux's UDP lookup
// scores a connected socket that matches a datagram's 4-tuple above an unconnected one bound to
// the same address and port, so from then on the client's datagrams queue here, in a receive
// buffer of this socket's size, and what the client sends beyond it is dropped by the kernel
// in this queue instead of the listener's, which every other client shares.
//
// Binding a second socket to the listener's port needs SO_REUSEPORT on it and on every socket
// already there. The listener keeps its exclusive bind: the flag is set on them only for the
// bind() below and cleared right after, on all of them, so no other socket can join the port
// before or after (a socket of the same
// effective UID could in those microseconds; Linux never lets another UID join a reuseport
// group). Lookup does not need the flag: with it off no reuseport selection runs, and scoring
// picks the connected socket for its client and the listener for everyone else.
#include "engine.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

namespace sluice {

Engine* LiveEngine(napi_env env, napi_value v);  // forward-api.cc

namespace {

napi_value Fail(napi_env env, int err, const char* syscall, const char* detail) {
  napi_throw(env, ErrnoError(env, err, syscall, detail));
  return nullptr;
}

void SetFlag(int fd, int level, int opt, int v) { setsockopt(fd, level, opt, &v, sizeof v); }

// Binds `fd` beside listener `lid` (see the file comment for the flags). Every socket already on
// that port needs the flag for the bind to pass: the kernel refuses it at the first one without
// (and would accept it at the first one with, so none may keep it afterwards).
int BindBeside(Engine* e, int fd, int lid, sockaddr_in6* local, socklen_t len) {
  auto flag = [e, lid](int v) {
    SetFlag(e->socks[lid].fd, SOL_SOCKET, SO_REUSEPORT, v);
    for (const Sock& s : e->socks) if (s.beside == lid && s.fd >= 0) SetFlag(s.fd, SOL_SOCKET, SO_REUSEPORT, v);
  };
  SetFlag(fd, SOL_SOCKET, SO_REUSEPORT, 1);
  flag(1);
  int r = bind(fd, reinterpret_cast<sockaddr*>(local), len);
  int err = errno;
  flag(0);
  SetFlag(fd, SOL_SOCKET, SO_REUSEPORT, 0);
  return r < 0 ? err : 0;
}

// isolate(engine, listenerId, clientHost, clientPort, rcvbufBytes) -> id of a socket bound where
// the listener is and connected to the client. Its datagrams come in records with their source,
// as a listener's do, and it sends to a destination as a listener does.
napi_value Isolate(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!Args(env, info, 5, argv)) return nullptr;
  Engine* e = LiveEngine(env, argv[0]);
  int32_t lid = -1, rcv = 0;
  napi_get_value_int32(env, argv[1], &lid);
  napi_get_value_int32(env, argv[4], &rcv);
  if (e == nullptr || lid < 0 || lid >= static_cast<int>(e->socks.size()) || e->socks[lid].fd < 0 || !e->socks[lid].listener) {
    return Fail(env, EBADF, "isolate", "(no such listener)");
  }
  const Sock l = e->socks[lid];  // a copy: AllocId below may grow the vector
  sockaddr_in6 client;
  socklen_t clen;
  char text[64];
  if (!ParseAddress(env, argv[2], argv[3], &client, &clen, text)) return Fail(env, EINVAL, "connect", "(not an IP literal)");
  if (client.sin6_family == AF_INET && l.family == AF_INET6) {
    // A dual-stack listener sees an IPv4 client as ::ffff:a.b.c.d.
    in_addr v4 = reinterpret_cast<sockaddr_in*>(&client)->sin_addr;
    in_port_t port = reinterpret_cast<sockaddr_in*>(&client)->sin_port;
    memset(&client, 0, sizeof client);
    client.sin6_family = AF_INET6;
    client.sin6_port = port;
    client.sin6_addr.s6_addr[10] = client.sin6_addr.s6_addr[11] = 0xff;
    memcpy(&client.sin6_addr.s6_addr[12], &v4, 4);
    clen = sizeof client;
  } else if (client.sin6_family != l.family) {
    return Fail(env, EAFNOSUPPORT, "connect", text);
  }
  sockaddr_in6 local;
  socklen_t llen = sizeof local;
  if (getsockname(l.fd, reinterpret_cast<sockaddr*>(&local), &llen) < 0) return Fail(env, errno, "getsockname", "");
  int fd = socket(l.family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Fail(env, errno, "socket", text);
  if (l.family == AF_INET6) {
    int v6only = 0;
    socklen_t olen = sizeof v6only;
    getsockopt(l.fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &olen);
    SetFlag(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only);
  }
  if (rcv > 0) SetFlag(fd, SOL_SOCKET, SO_RCVBUF, rcv);
  int err = BindBeside(e, fd, lid, &local, llen);
  const char* call = "bind";
  if (err == 0 && connect(fd, reinterpret_cast<sockaddr*>(&client), clen) < 0) {
    err = errno;
    call = "connect";
  }
  int id = -1;
  if (err == 0) {
    id = AllocId(e);
    epoll_event ev = {};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<uint32_t>(id);
    if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
      err = errno;
      call = "epoll_ctl";
      ReleaseId(e, id);
    }
  }
  if (err != 0) {
    close(fd);
    return Fail(env, err, call, text);
  }
  Sock& s = e->socks[id];
  s.fd = fd;
  s.family = l.family;
  s.listener = true;  // records carry the source; sends name their destination
  s.beside = lid;
  e->active++;
  Watch(e);
  return Int(env, id);
}

// socketDrops(engine, id) -> datagrams the kernel dropped at this socket since it was opened (a
// full receive queue, or all UDP sockets over net.ipv4.udp_mem), or -1 when it cannot tell.
napi_value SocketDrops(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!Args(env, info, 2, argv)) return nullptr;
  Engine* e = LiveEngine(env, argv[0]);
  int32_t id = -1;
  napi_get_value_int32(env, argv[1], &id);
  double drops = -1;
  if (e != nullptr && id >= 0 && id < static_cast<int>(e->socks.size()) && e->socks[id].fd >= 0) drops = KernelDrops(e->socks[id].fd);
  napi_value out;
  napi_create_double(env, drops, &out);
  return out;
}

}  // namespace

void RegisterIsolate(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"isolate", nullptr, Isolate, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"socketDrops", nullptr, SocketDrops, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"watchSources", nullptr, WatchSources, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}

}  // namespace sluice
