// Kernel buffer sizes of a socket already in the engine (a connected channel's socket keeps the
// system default unless its owner asks: docs/udpexposer.md, "Datapath").
#include "engine.h"
#include "stream.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace sluice {
namespace {

// socketBuffers(engine, id, rcvbufBytes, sndbufBytes) -> true when set (0 leaves one as it is)
napi_value SocketBuffers(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  void* p = nullptr;
  int32_t id = -1, rcv = 0, snd = 0;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 4 || napi_get_value_external(env, argv[0], &p) != napi_ok ||
      p == nullptr || napi_get_value_int32(env, argv[1], &id) != napi_ok || napi_get_value_int32(env, argv[2], &rcv) != napi_ok ||
      napi_get_value_int32(env, argv[3], &snd) != napi_ok) {
    napi_throw_type_error(env, nullptr, "socketBuffers(engine, id, rcvbufBytes, sndbufBytes)");
    return nullptr;
  }
  Engine* e = static_cast<Engine*>(p);
  bool ok = !e->destroyed && id >= 0 && id < static_cast<int>(e->socks.size()) && e->socks[id].fd >= 0;
  if (ok && rcv > 0) ok = setsockopt(e->socks[id].fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv) == 0;
  if (ok && snd > 0) ok = setsockopt(e->socks[id].fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd) == 0;
  napi_value out;
  napi_get_boolean(env, ok, &out);
  return out;
}

// streamKeepalive(streamEngine, id, idleS, intervalS, count) -> true when set: TCP keepalive on a
// connection of the stream engine (an idle pooled data connection: docs/expose.md, "Data
// connections for TCP streams"), probes after idleS quiet seconds, every intervalS, `count` unanswered
// probes end it.
napi_value StreamKeepalive(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  void* p = nullptr;
  int32_t id = -1, idle = 0, intvl = 0, cnt = 0;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 5 || napi_get_value_external(env, argv[0], &p) != napi_ok ||
      p == nullptr || napi_get_value_int32(env, argv[1], &id) != napi_ok || napi_get_value_int32(env, argv[2], &idle) != napi_ok ||
      napi_get_value_int32(env, argv[3], &intvl) != napi_ok || napi_get_value_int32(env, argv[4], &cnt) != napi_ok || idle < 1 || intvl < 1 || cnt < 1) {
    napi_throw_type_error(env, nullptr, "streamKeepalive(streamEngine, id, idleS >= 1, intervalS >= 1, count >= 1)");
    return nullptr;
  }
  StreamEngine* e = static_cast<StreamEngine*>(p);
  bool ok = !e->destroyed && id >= 0 && id < static_cast<int>(e->conns.size()) && e->conns[id].fd >= 0;
  const int on = 1;
  int fd = ok ? e->conns[id].fd : -1;
  ok = ok && setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) == 0 && setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) == 0 &&
       setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl) == 0 && setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt) == 0;
  napi_value out;
  napi_get_boolean(env, ok, &out);
  return out;
}

}  // namespace

void RegisterSockopt(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"socketBuffers", nullptr, SocketBuffers, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"streamKeepalive", nullptr, StreamKeepalive, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}

}  // namespace sluice
