// N-API helpers shared by the UDP engine (addon.cc) and the stream engine (stream-api.cc).
#pragma once

#include <node_api.h>
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

}  // namespace sluice
