// The join at connect: a dial that names the held client it is for (streamDialJoin) becomes a
// pair inside the engine the moment it connects, in the same look at the set, before JavaScript
// sees the `connected` record (which then says joined). The route decided everything beforehand
// (admission, no PROXY header to send, no bandwidth pacing, no bytes read from the client), so
// what is left of the per-connection setup is one N-API call for the dial and the record: no
// streamPipe call and no extra JavaScript between the dial's answer and the first bytes.
#include "stream-internal.h"
#include "napi-util.h"

namespace sluice {

// Unlinks a dial and its client (either one closing, released or joined): the dial, when it
// connects, is then an ordinary held connection and its record says not joined.
void StreamUnjoin(StreamEngine* e, int id) {
  StreamConn& c = e->conns[id];
  if (c.join < 0) return;
  if (c.join < static_cast<int>(e->conns.size()) && e->conns[c.join].join == id) e->conns[c.join].join = -1;
  c.join = -1;
}

// `id` (an upstream whose dial just succeeded, now held) joins the client it was dialed for;
// false when it was dialed for none, the client is gone, or the pair cannot start (then both stay
// held and JavaScript decides, as after streamDial).
bool StreamJoinAtConnect(StreamEngine* e, int id) {
  int client = e->conns[id].join;
  if (client < 0) return false;
  uint32_t idle_ms = e->conns[id].join_idle_ms;
  StreamUnjoin(e, id);
  StreamConn& c = e->conns[client];
  if (c.fd < 0 || c.kind != Kind::Held) return false;
  return StreamStartPair(e, client, id, idle_ms) == 0;
}

namespace {

// streamDialJoin(engine, host, port, timeoutMs, client, idleMs) -> id: streamDial for a held
// client; when the dial succeeds the engine joins the two (streamPipe with idleMs) and the
// `connected` record says so. The client must be held and not already the object of a dial.
napi_value DialJoin(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!Args(env, info, 6, argv)) return nullptr;
  void* p = nullptr;
  if (napi_get_value_external(env, argv[0], &p) != napi_ok || p == nullptr) {
    napi_throw_type_error(env, nullptr, "not a stream engine");
    return nullptr;
  }
  StreamEngine* e = static_cast<StreamEngine*>(p);
  int32_t client = -1, idle = 0;
  napi_get_value_int32(env, argv[4], &client);
  napi_get_value_int32(env, argv[5], &idle);
  if (!e->destroyed && (client < 0 || client >= static_cast<int>(e->conns.size()) || e->conns[client].fd < 0 ||
                        e->conns[client].kind != Kind::Held || e->conns[client].join >= 0)) {
    napi_throw_error(env, "SLUICE_NATIVE", "only a held connection without a dial can be joined at connect");
    return nullptr;
  }
  napi_value out = StreamDialCall(env, info);
  if (out == nullptr) return nullptr;
  int32_t id = -1;
  napi_get_value_int32(env, out, &id);
  StreamConn& u = e->conns[id];
  u.join = client;
  u.join_idle_ms = static_cast<uint32_t>(idle > 0 ? idle : 0);
  e->conns[client].join = id;
  return out;
}

}  // namespace

void RegisterStreamJoin(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"streamDialJoin", nullptr, DialJoin, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}

}  // namespace sluice
