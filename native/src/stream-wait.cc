// The stream engine's set on top (stream.h, StreamEngine::top; docs/datapath.md, "One epoll set
// for the engine's sockets"). By default the engine's epoll set is a member of libuv's (one
// uv_poll), so every event of an engine socket wakes two sets and every EPOLL_CTL_ADD into the
// engine's set takes the kernel's nesting lock and path check (the set added to is itself
// watched). On top, the nesting is the other way round: libuv's set is a member of the engine's,
// and the JavaScript thread blocks in the engine's set, from a prepare handle (after libuv has run
// its timers, pending and idle callbacks and computed how long it may sleep). The engine's sockets
// then sit in a set no other set watches; Node's own sockets (and the UDP engine's set) pay the
// nesting instead. When the wait returns, libuv's own look at its set is kept from blocking again
// (an idle handle, started for that one turn of the loop).
//
// The time blocked here is idle time that libuv's loop metrics cannot see (its own look then
// never waits); it is counted in `idle_ns` (streamWaitedMs) for the event loop's utilisation.
#include "stream-internal.h"
#include "napi-util.h"

#include <errno.h>
#include <sys/epoll.h>
#include <time.h>

#include <algorithm>
#include <mutex>
#include <vector>

namespace sluice {

static uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

static void OnIdle(uv_idle_t* handle) { uv_idle_stop(handle); }

static void OnPrepare(uv_prepare_t* handle) {
  StreamEngine* e = static_cast<StreamEngine*>(handle->data);
  if (e->destroyed) return;
  // What libuv would sleep for now: 0 with anything pending (setImmediate, pending callbacks,
  // closing handles), else until its next timer (-1: none).
  int timeout = uv_backend_timeout(e->loop);
  StreamWake(e, timeout);
  if (!e->destroyed) uv_idle_start(&e->idle, OnIdle);
}

namespace {

// The loops that have an engine on top: one per loop, since the thread can block in only one set
// (a second engine stays nested in libuv's set, which is nested in the first one's, so it is
// still woken). Worker threads have loops of their own, hence the lock.
std::mutex top_mutex;
std::vector<uv_loop_t*> top_loops;

bool ClaimLoop(uv_loop_t* loop) {
  std::lock_guard<std::mutex> lock(top_mutex);
  if (std::find(top_loops.begin(), top_loops.end(), loop) != top_loops.end()) return false;
  top_loops.push_back(loop);
  return true;
}

// streamWaitOnTop(engine) -> whether the engine's set is now on top (false: another engine of this
// loop is). Only before anything is open in it (a listener or a dial), so the uv_poll of the
// nested arrangement was never started.
napi_value WaitOnTop(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!Args(env, info, 1, argv)) return nullptr;
  StreamEngine* e = LiveStreamEngine(env, argv[0]);
  if (e == nullptr) return nullptr;
  napi_value out;
  if (e->top) return napi_get_boolean(env, true, &out), out;
  if (e->polling || e->active > 0) {
    napi_throw_error(env, "SLUICE_NATIVE", "streamWaitOnTop: the engine already has sockets open");
    return nullptr;
  }
  if (!ClaimLoop(e->loop)) return napi_get_boolean(env, false, &out), out;
  // Level-triggered: libuv's set stays readable until libuv has looked at it.
  epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u32 = kLoopSetTag;
  if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, uv_backend_fd(e->loop), &ev) < 0) {
    StreamWaitRelease(e->loop);
    napi_throw(env, ErrnoError(env, errno, "epoll_ctl", "(libuv's set into the stream engine's)"));
    return nullptr;
  }
  uv_prepare_init(e->loop, &e->prepare);
  uv_idle_init(e->loop, &e->idle);
  e->prepare.data = e;
  e->idle.data = e;
  e->owners += 2;  // the two handles, closed by Teardown
  e->top = true;
  return napi_get_boolean(env, true, &out), out;
}

// streamWaitedMs(engine) -> milliseconds the thread has spent blocked in the engine's set on top;
// also after streamDestroy (the external keeps the engine's memory until it is collected).
napi_value WaitedMs(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!Args(env, info, 1, argv)) return nullptr;
  void* p = nullptr;
  if (napi_get_value_external(env, argv[0], &p) != napi_ok || p == nullptr) {
    napi_throw_type_error(env, nullptr, "not a stream engine");
    return nullptr;
  }
  StreamEngine* e = static_cast<StreamEngine*>(p);
  napi_value out;
  napi_create_double(env, static_cast<double>(e->idle_ns) / 1e6, &out);
  return out;
}

}  // namespace

void StreamWaitRelease(uv_loop_t* loop) {
  std::lock_guard<std::mutex> lock(top_mutex);
  top_loops.erase(std::remove(top_loops.begin(), top_loops.end(), loop), top_loops.end());
}

void RegisterStreamWait(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"streamWaitOnTop", nullptr, WaitOnTop, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"streamWaitedMs", nullptr, WaitedMs, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}

void StreamWaitWatch(StreamEngine* e, bool on) {
  if (on) uv_prepare_start(&e->prepare, OnPrepare);
  else uv_prepare_stop(&e->prepare);
}

// The first look of a wake-up on top may block for `timeout_ms`; its idle time is counted.
int StreamWaitFirst(StreamEngine* e, epoll_event* evs, int max, int timeout_ms) {
  if (timeout_ms == 0) return epoll_wait(e->epfd, evs, max, 0);
  uint64_t t0 = MonotonicNs();
  int n = epoll_wait(e->epfd, evs, max, timeout_ms);
  e->idle_ns += MonotonicNs() - t0;
  return n;
}

}  // namespace sluice
