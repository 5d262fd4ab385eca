// A bounded receive delay (docs/datapath.md, "A bounded receive delay"): at a paced rate every
// readiness wake-up carries one datagram, and on loopback the wake-ups (a context switch in, one
// out, an inter-processor interrupt from the sender) cost more than moving the datagram. With a
// delay of D microseconds, a callback that harvested datagrams sleeps D before returning to the
// loop when traffic is dense, so what arrives meanwhile is received, handled and sent as one batch
// (one wake-up, one sendmmsg, GSO runs) instead of one wake-up each. Dense means both:
//  - the arrival rate over the last window (kRateWindowNs) brings at least kMinPerDelay datagrams
//    per delay: below that a sleep would mostly delay a lone datagram (a request's answer) and
//    save nothing;
//  - this callback started within D of the previous one's end.
//
// Bounds, by construction:
//  - the first datagram after a quiet spell (longer than D) is handled at once, and traffic too
//    sparse to fill a batch is never delayed; a datagram that arrives during a sleep waits at most D;
//  - a batch that filled its slots (a flood), or whose harvest found more sockets ready than one
//    epoll_wait returns (many sessions at once), never sleeps: the loop runs as before;
//  - the sleep blocks the JavaScript thread for at most D (kMaxHoldUs), so timers and signals of
//    the process are late by at most that.
//
// Adaptive (receiveDelayAdaptive: the udpexposer mode's default), like a NIC's adaptive interrupt
// moderation: the delay engages only while the last window's rate is at least a floor (below it a
// game's or a call's datagrams are never held, whatever D), disengages when the rate falls below
// 3/4 of the floor (so a rate near the floor does not flap), and each sleep lasts about the time
// the next `batch` datagrams take to arrive at that rate, never more than D: the busier the
// traffic, the shorter the added latency for the same batch.
#include "engine.h"

#include <time.h>

namespace sluice {

constexpr int kMaxHoldUs = 10000;

static uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t HoldStart(Engine* e) { return e->hold_us > 0 ? NowNs() : 0; }

constexpr uint64_t kRateWindowNs = 10000000;  // 10 ms
constexpr uint64_t kMinPerDelay = 2;
constexpr int kReadyMax = 64;  // the events one epoll_wait of Harvest returns at most

void HoldAfter(Engine* e, uint64_t started, int harvested, bool full) {
  if (e->hold_us <= 0 || e->destroyed || harvested == 0) return;
  uint64_t d = static_cast<uint64_t>(e->hold_us) * 1000;
  uint64_t now = NowNs();
  if (e->hold_window_ns == 0) e->hold_window_ns = started;
  e->hold_count += static_cast<uint64_t>(harvested);
  if (now - e->hold_window_ns >= kRateWindowNs) {
    uint64_t elapsed = now - e->hold_window_ns;
    // count / elapsed * d >= kMinPerDelay, without dividing.
    bool dense = e->hold_count * d >= kMinPerDelay * elapsed;
    e->hold_rate = e->hold_count * 1000000000ull / elapsed;
    if (e->hold_min_rate > 0) {
      // Engage at the floor, disengage below 3/4 of it.
      uint64_t floor = static_cast<uint64_t>(e->hold_min_rate);
      if (e->hold_dense) floor = floor * 3 / 4;
      dense = dense && e->hold_rate >= floor;
    }
    if (dense && !e->hold_dense) e->hold_engages++;
    if (!dense && e->hold_dense) e->hold_disengages++;
    e->hold_dense = dense;
    e->hold_window_ns = now;
    e->hold_count = 0;
  }
  bool recent = e->hold_last_ns != 0 && started - e->hold_last_ns <= d;
  // More sockets were ready than one epoll_wait reports (a thousand sessions' sockets with one
  // datagram each): the next batch is already waiting, a sleep would only hold it back.
  bool waiting = e->hold_ready >= kReadyMax;
  if (e->hold_dense && recent && !full && !waiting) {
    // Adaptive: about the time `batch` datagrams take at the last window's rate, at most D.
    if (e->hold_batch > 0 && e->hold_rate > 0) {
      uint64_t span = static_cast<uint64_t>(e->hold_batch) * 1000000000ull / e->hold_rate;
      if (span < d) d = span;
    }
    timespec ts = {static_cast<time_t>(d / 1000000000ull), static_cast<long>(d % 1000000000ull)};
    while (nanosleep(&ts, &ts) != 0) {
    }
    e->holds++;
    now = NowNs();
  }
  e->hold_last_ns = now;
}

namespace {

// receiveDelay(engine, microseconds) -> the delay now in force (clamped to 0..kMaxHoldUs)
napi_value ReceiveDelay(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 2) {
    napi_throw_type_error(env, nullptr, "receiveDelay(engine, microseconds)");
    return nullptr;
  }
  void* p = nullptr;
  int32_t us = 0;
  if (napi_get_value_external(env, argv[0], &p) != napi_ok || p == nullptr || napi_get_value_int32(env, argv[1], &us) != napi_ok) {
    napi_throw_type_error(env, nullptr, "receiveDelay(engine, microseconds)");
    return nullptr;
  }
  Engine* e = static_cast<Engine*>(p);
  if (us < 0) us = 0;
  if (us > kMaxHoldUs) us = kMaxHoldUs;
  if (!e->destroyed) e->hold_us = us;
  return Int(env, e->hold_us);
}

// The engine in argv[0] of a call with `want` arguments (argv has room for them), else throws `usage`.
Engine* EngineArgs(napi_env env, napi_callback_info info, size_t want, napi_value* argv, const char* usage) {
  size_t argc = want;
  void* p = nullptr;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < want || napi_get_value_external(env, argv[0], &p) != napi_ok || p == nullptr) {
    napi_throw_type_error(env, nullptr, usage);
    return nullptr;
  }
  return static_cast<Engine*>(p);
}

// receiveDelays(engine) -> how many times the engine slept to let a batch fill
napi_value ReceiveDelays(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  Engine* e = EngineArgs(env, info, 1, argv, "receiveDelays(engine)");
  if (e == nullptr) return nullptr;
  napi_value out;
  napi_create_double(env, static_cast<double>(e->holds), &out);
  return out;
}

// receiveDelayAdaptive(engine, minRate, batch): the adaptive rule above; minRate in datagrams/s
// (0: no floor), batch in datagrams (0: every sleep lasts the full delay).
napi_value ReceiveDelayAdaptive(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  const char* usage = "receiveDelayAdaptive(engine, minRate >= 0, batch >= 0)";
  Engine* e = EngineArgs(env, info, 3, argv, usage);
  if (e == nullptr) return nullptr;
  int32_t rate = 0, batch = 0;
  if (napi_get_value_int32(env, argv[1], &rate) != napi_ok || napi_get_value_int32(env, argv[2], &batch) != napi_ok || rate < 0 || batch < 0) {
    napi_throw_type_error(env, nullptr, usage);
    return nullptr;
  }
  if (!e->destroyed) {
    e->hold_min_rate = rate;
    e->hold_batch = batch;
  }
  return nullptr;
}

// receiveDelayState(engine) -> [sleeps, engaged (0/1), engages, disengages, rate of the last window]
napi_value ReceiveDelayState(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  Engine* e = EngineArgs(env, info, 1, argv, "receiveDelayState(engine)");
  if (e == nullptr) return nullptr;
  double v[5] = {static_cast<double>(e->holds), e->hold_dense ? 1.0 : 0.0, static_cast<double>(e->hold_engages), static_cast<double>(e->hold_disengages), static_cast<double>(e->hold_rate)};
  napi_value out;
  napi_create_array_with_length(env, 5, &out);
  for (uint32_t i = 0; i < 5; i++) {
    napi_value n;
    napi_create_double(env, v[i], &n);
    napi_set_element(env, out, i, n);
  }
  return out;
}

}  // namespace

void RegisterHold(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"receiveDelay", nullptr, ReceiveDelay, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"receiveDelays", nullptr, ReceiveDelays, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"receiveDelayAdaptive", nullptr, ReceiveDelayAdaptive, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"receiveDelayState", nullptr, ReceiveDelayState, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}

}  // namespace sluice
