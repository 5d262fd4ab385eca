// Functions shared by stream.cc (the engine), stream-pump.cc (a pair's pump) and stream-api.cc
// (their N-API surface).
#pragma once

#include "stream.h"

namespace sluice {

int StreamAllocId(StreamEngine* e);
int StreamAdopt(StreamEngine* e, int fd, Kind kind);
int StreamCtl(StreamEngine* e, int id, int op, uint32_t events);
int StreamCtlEdge(StreamEngine* e, int id);
void StreamWatch(StreamEngine* e);
void StreamNoteTimeout(StreamEngine* e, uint32_t ms);
void StreamCloseConn(StreamEngine* e, int id);
double* StreamEmit(StreamEngine* e);
void StreamDeliver(StreamEngine* e);
void StreamOnReadable(uv_poll_t* handle, int status, int events);
void StreamOnTick(uv_timer_t* handle);
// stream-moderate.cc: a wake-up's start time (0 when moderation is off), and the wait after it.
uint64_t StreamModerateStart(StreamEngine* e);
void StreamModerateAfter(StreamEngine* e, uint64_t started, uint64_t read);
// stream-pump.cc: the pump of an established pair, its pipes and its end.
int StreamStartPair(StreamEngine* e, int client, int upstream, uint32_t idle_ms);
void StreamPump(StreamEngine* e, int id);
void StreamPutPipe(StreamEngine* e, int* r, int* w, uint32_t slots);
void StreamClosePipe(StreamEngine* e, int r, int w, uint32_t slots);
void StreamEndPair(StreamEngine* e, int id, int reason, int err);

// stream-join.cc: the join at connect (streamDialJoin).
void StreamUnjoin(StreamEngine* e, int id);
bool StreamJoinAtConnect(StreamEngine* e, int id);
void RegisterStreamJoin(napi_env env, napi_value exports);
// stream-trunk-api.cc: the trunk's calls (stream-trunk.h).
void RegisterStreamTrunk(napi_env env, napi_value exports);
// stream-congestion.cc: TCP_CONGESTION on a socket about to listen or connect, as the engine's
// setting asks for `addr` (0, or the errno of setsockopt); the call that sets it.
int StreamApplyCongestion(StreamEngine* e, int fd, const sockaddr_in6& addr);
void RegisterStreamCongestion(napi_env env, napi_value exports);
// stream-api.cc: streamDial's N-API entry, which streamDialJoin extends.
napi_value StreamDialCall(napi_env env, napi_callback_info info);
// stream-api.cc: a Uint8Array argument's bytes (throws a TypeError otherwise).
bool StreamBytes(napi_env env, napi_value v, uint8_t** data, size_t* len);

// stream-sealed-api.cc: the engine of a call's first argument (throws when it is not a live one),
// and optional bytes (undefined gives none; anything else must be a Uint8Array).
StreamEngine* LiveStreamEngine(napi_env env, napi_value v);
bool OptionalBytes(napi_env env, napi_value v, const uint8_t** data, size_t* len);

// errors.cc
napi_value ErrnoError(napi_env env, int err, const char* syscall, const char* detail);

}  // namespace sluice
