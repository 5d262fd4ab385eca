// Wake-up moderation for the stream engine (docs/datapath.md, "Several bulk streams"), the TCP
// counterpart of hold.cc's adaptive receive delay and of a NIC's adaptive interrupt moderation.
// When the engine has CPU to spare under bulk traffic, each wake-up finds a few segments of one
// stream: many small splices, and every segment a sender queues wakes the engine (and every
// segment the engine sends wakes its receiver) on the other CPU. After such a wake-up the engine
// waits a short bounded time before returning to the loop, so the next one reads more per splice
// and writes bigger chunks.
//
// The rule, all of it required for a wait:
//  - the last 10 ms window's read rate over all pairs is at least min_rate (bulk); it disengages
//    when a window falls below 3/4 of it, and the first wake-up after a quiet spell closes its
//    window with a low rate, so it is off before that wake-up's decision;
//  - the wake-up read something, but less than `batch` bytes (a wake-up that found a backlog
//    would gain nothing by waiting);
//  - it started within the bound of the previous one's end (a lone message after a pause, such
//    as a keystroke after the bulk, is never held).
// The wait lasts the time the rest of `batch` takes at the window's rate, at most bound_us. It
// blocks the JavaScript thread, so timers and events of the process are late by at most that.
#include "stream.h"
#include "stream-internal.h"

#include <stdlib.h>
#include <time.h>

namespace sluice {

constexpr uint64_t kModWindowNs = 10000000;  // 10 ms
constexpr int kModMaxUs = 2000;

static uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t StreamModerateStart(StreamEngine* e) { return e->mod.bound_us > 0 ? NowNs() : 0; }

void StreamModerateAfter(StreamEngine* e, uint64_t started, uint64_t read) {
  StreamEngine::Moderation& m = e->mod;
  if (m.bound_us <= 0 || e->destroyed) return;
  uint64_t now = NowNs();
  if (m.window_ns == 0) m.window_ns = started;
  m.window_bytes += read;
  if (now - m.window_ns >= kModWindowNs) {
    uint64_t elapsed = now - m.window_ns;
    m.rate = static_cast<uint64_t>(static_cast<double>(m.window_bytes) * 1e9 / static_cast<double>(elapsed));
    uint64_t floor = m.on ? m.min_rate * 3 / 4 : m.min_rate;
    bool on = m.rate >= floor;
    if (on && !m.on) m.engages++;
    if (!on && m.on) m.disengages++;
    m.on = on;
    m.window_ns = now;
    m.window_bytes = 0;
  }
  uint64_t bound = static_cast<uint64_t>(m.bound_us) * 1000;
  bool recent = m.last_ns != 0 && started - m.last_ns <= bound;
  if (m.on && recent && read > 0 && read < m.batch && m.rate > 0) {
    uint64_t d = static_cast<uint64_t>(static_cast<double>(m.batch - read) * 1e9 / static_cast<double>(m.rate));
    if (d > bound) d = bound;
    timespec ts = {static_cast<time_t>(d / 1000000000ull), static_cast<long>(d % 1000000000ull)};
    while (nanosleep(&ts, &ts) != 0) {
    }
    m.waits++;
    now = NowNs();
  }
  m.last_ns = now;
}

namespace {

StreamEngine* EngineArg(napi_env env, napi_value v) {
  void* p = nullptr;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == nullptr) return nullptr;
  return static_cast<StreamEngine*>(p);
}

// streamModeration(engine, boundUs, minRate, batch): boundUs 0..kModMaxUs (0: off), minRate in
// bytes/s, batch in bytes.
napi_value Moderation(napi_env env, napi_callback_info info) {
  const char* usage = "streamModeration(engine, boundUs 0-2000, minRate >= 1 bytes/s, batch >= 1 bytes)";
  size_t argc = 4;
  napi_value argv[4];
  double bound = 0, rate = 0, batch = 0;
  StreamEngine* e = nullptr;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 4 || (e = EngineArg(env, argv[0])) == nullptr ||
      napi_get_value_double(env, argv[1], &bound) != napi_ok || napi_get_value_double(env, argv[2], &rate) != napi_ok ||
      napi_get_value_double(env, argv[3], &batch) != napi_ok || !(bound >= 0 && bound <= kModMaxUs) || !(rate >= 1) || !(batch >= 1)) {
    napi_throw_range_error(env, nullptr, usage);
    return nullptr;
  }
  if (!e->destroyed) {
    e->mod.bound_us = static_cast<int>(bound);
    e->mod.min_rate = static_cast<uint64_t>(rate);
    e->mod.batch = static_cast<uint64_t>(batch);
  }
  return nullptr;
}

// streamModerationState(engine) -> [waits, engaged (0/1), engages, disengages, rate of the last
// window in bytes/s, bytes read by piped pairs]
napi_value ModerationState(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  StreamEngine* e = nullptr;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 1 || (e = EngineArg(env, argv[0])) == nullptr) {
    napi_throw_type_error(env, nullptr, "streamModerationState(engine)");
    return nullptr;
  }
  const StreamEngine::Moderation& m = e->mod;
  double v[6] = {static_cast<double>(m.waits), m.on ? 1.0 : 0.0, static_cast<double>(m.engages), static_cast<double>(m.disengages),
                 static_cast<double>(m.rate), static_cast<double>(e->read_bytes)};
  napi_value out;
  napi_create_array_with_length(env, 6, &out);
  for (uint32_t i = 0; i < 6; i++) {
    napi_value n;
    napi_create_double(env, v[i], &n);
    napi_set_element(env, out, i, n);
  }
  return out;
}

}  // namespace

void RegisterStreamModerate(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"streamModeration", nullptr, Moderation, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"streamModerationState", nullptr, ModerationState, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}

}  // namespace sluice
