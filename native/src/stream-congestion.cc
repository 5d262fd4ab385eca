// The congestion control of the engine's own TCP sockets (docs/datapath.md "Congestion control of
// the engine's sockets"): set with TCP_CONGESTION before listen() or connect(), so the kernel's
// default never starts on them. Which algorithm, and for which sockets, is TypeScript's decision
// (datapath/congestion.ts); the engine applies it: `all` to every listener and dial, else `local`
// to those whose peer is on this host (a dial to a loopback address, a listener bound to one).
#include "stream-internal.h"
#include "napi-util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

namespace sluice {

namespace {

bool Loopback(const sockaddr_in6& a) {
  if (a.sin6_family == AF_INET) {
    const sockaddr_in& v4 = reinterpret_cast<const sockaddr_in&>(a);
    return (ntohl(v4.sin_addr.s_addr) >> 24) == 127;
  }
  if (IN6_IS_ADDR_LOOPBACK(&a.sin6_addr)) return true;
  return IN6_IS_ADDR_V4MAPPED(&a.sin6_addr) && a.sin6_addr.s6_addr[12] == 127;
}

// Copies a name argument into `out` (empty for undefined or ""); false (and a TypeError) otherwise.
bool Name(napi_env env, napi_value v, char (&out)[kCongestionName]) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  out[0] = '\0';
  if (t == napi_undefined) return true;
  // The length first: a copy into `out` alone could not tell a 15-character name from a longer one cut.
  size_t n = 0;
  if (t != napi_string || napi_get_value_string_utf8(env, v, nullptr, 0, &n) != napi_ok || n >= sizeof out ||
      napi_get_value_string_utf8(env, v, out, sizeof out, &n) != napi_ok) {
    out[0] = '\0';
    napi_throw_type_error(env, nullptr, "a congestion control is a name of at most 15 characters");
    return false;
  }
  return true;
}

// streamCongestion(engine, local, all): the algorithms for later listeners and dials ("" or
// undefined: the kernel's default). Sockets already open keep theirs.
napi_value Congestion(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!Args(env, info, 3, argv)) return nullptr;
  StreamEngine* e = LiveStreamEngine(env, argv[0]);
  if (e == nullptr) return nullptr;
  char local[kCongestionName], all[kCongestionName];
  if (!Name(env, argv[1], local) || !Name(env, argv[2], all)) return nullptr;
  memcpy(e->cc_local, local, sizeof local);
  memcpy(e->cc_all, all, sizeof all);
  return nullptr;
}

}  // namespace

int StreamApplyCongestion(StreamEngine* e, int fd, const sockaddr_in6& addr) {
  const char* cc = e->cc_all[0] != '\0' ? e->cc_all : (e->cc_local[0] != '\0' && Loopback(addr)) ? e->cc_local : nullptr;
  if (cc == nullptr) return 0;
  return setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, cc, strlen(cc)) == 0 ? 0 : errno;
}

void RegisterStreamCongestion(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"streamCongestion", nullptr, Congestion, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}

}  // namespace sluice
