// N-API helpers shared by the UDP engine (addon.cc) and the stream engine (stream-api.cc).
#pragma once

#include <node_api.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace sluice {

// Reads exactly `want` arguments; throws a TypeError and returns false when fewer were given.
bool Args(napi_env env, napi_callback_info info, size_t want, napi_value* argv);

// An IP literal (no brackets, no zone) and a port as a socket address (IPv4 fits in `out` too);
// `text` (64 bytes) receives the host, for error messages.
bool ParseAddress(napi_env env, napi_value host, napi_value port, sockaddr_in6* out, socklen_t* len, char* text);

// The socket's bound address as [family (4|6), address, port]; throws a getsockname error.
napi_value LocalAddressOf(napi_env env, int fd);

// errors.cc: a Node-style system error (code, errno, syscall).
napi_value ErrnoError(napi_env env, int err, const char* syscall, const char* detail);

// An address parsed from JavaScript and the host as text (for error messages).
struct SocketAddress {
  sockaddr_in6 addr;  // IPv4 fits too
  socklen_t len;
  char text[64];
};

// The preamble of every call that opens a socket (the UDP engine's listen and connect, the stream
// engine's listen and dial): argv[1] (an IP literal) and argv[2] (a port) parsed into `a`, and a
// non-blocking, close-on-exec socket of `type` for that family. Returns the descriptor, or -1
// after throwing: EINVAL from `what` (the call the address was for: "bind", "connect") when the
// host is not an IP literal, else socket()'s errno naming the host.
inline int OpenSocket(napi_env env, napi_value* argv, int type, const char* what, SocketAddress* a) {
  if (!ParseAddress(env, argv[1], argv[2], &a->addr, &a->len, a->text)) {
    napi_throw(env, ErrnoError(env, EINVAL, what, "(not an IP literal)"));
    return -1;
  }
  int fd = socket(a->addr.sin6_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) napi_throw(env, ErrnoError(env, errno, "socket", a->text));
  return fd;
}

}  // namespace sluice
